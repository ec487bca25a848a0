#!/usr/bin/env bash
# Cargo runner: qemu-run.sh ELF. Boots the ELF on an LM3S6965 (Cortex-M3) in QEMU and decodes
# its defmt log (semihosting stdout) with defmt-print. The exit status is QEMU's, which is the
# firmware's semihosting exit code (0 after the last test, 101 on a panic), or 124 on timeout.
set -uo pipefail
elf="$1"
timeout 300 qemu-system-arm -M lm3s6965evb -cpu cortex-m3 -display none -monitor none \
    -serial none -semihosting-config enable=on,target=native -kernel "$elf" </dev/null |
    defmt-print -e "$elf"
exit "${PIPESTATUS[0]}"
