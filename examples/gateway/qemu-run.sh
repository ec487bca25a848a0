#!/usr/bin/env bash
# Cargo runner for the gateway firmware: `cargo run --release -- port=9092 records=1000`.
#
# Boots the ELF ($1) on QEMU's mps2-an386 with user-mode networking and a LAN9118 NIC (the
# host's 127.0.0.1 is 10.0.2.2 to the guest) and hands the remaining arguments to the firmware
# through semihosting (argument 0 is "gateway"; commas are escaped for QEMU). QEMU's stdout
# carries the defmt stream, decoded here by defmt-print. Exits with QEMU's status, which is the
# firmware's exit code (0 all persisted, 2 some not, 1 configuration or fatal error, 101 panic).
set -u
elf=$1
shift
semihosting="enable=on,target=native,arg=gateway"
for arg in "$@"; do
    semihosting+=",arg=${arg//,/,,}"
done
qemu-system-arm -M mps2-an386 -display none -monitor none -serial none \
    -nic user,model=lan9118 -semihosting-config "$semihosting" -kernel "$elf" </dev/null \
    | defmt-print -e "$elf"
exit "${PIPESTATUS[0]}"
