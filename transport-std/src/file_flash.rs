//! A NOR flash in a file, so that hosts keep the producer's durable state the way a gateway
//! keeps it on flash: the same `embedded-storage` traits, the same sequential-storage layout,
//! the same rules (writes only clear bits, erases set whole pages to 0xFF).
//!
//! Every write goes to the file with `pwrite` before it returns, so it outlives the process
//! (a crash, SIGKILL): the kernel's page cache holds it. Only a power loss or a kernel crash
//! can lose the last writes; [`FileFlash::open`] with `sync` adds an `fdatasync` per write
//! and erase for that, at about five times the cost.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Erase page of the file flash: large, as host batches are (a batch item must fit a page).
pub const PAGE_SIZE: usize = 256 * 1024;

/// Why a file-flash operation failed.
#[derive(Debug)]
pub enum FileFlashError {
    /// Offset or length not aligned to the write or erase size.
    NotAligned,
    /// Beyond the end of the flash.
    OutOfBounds,
    /// A write would set a bit an earlier write cleared (flash needs an erase first): a
    /// bug in the layout above, never let through.
    NotErased {
        /// The offset.
        offset: u32,
    },
    /// The file failed.
    Io(io::Error),
}

impl NorFlashError for FileFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FileFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FileFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// A NOR flash of `pages` × [`PAGE_SIZE`] bytes backed by a file.
pub struct FileFlash {
    file: File,
    capacity: usize,
    sync: bool,
    /// Reused for the bits a write lands on, so steady writes allocate nothing.
    scratch: Vec<u8>,
}

impl FileFlash {
    /// Opens the flash image at `path`, creating it erased (all 0xFF) when missing. A new
    /// image is written beside it and renamed into place, so a crash while it is made leaves
    /// no image (and the next open starts over) rather than a short one. An existing image of
    /// another size is refused: its layout would not match.
    pub fn open(path: &Path, pages: usize, sync: bool) -> io::Result<FileFlash> {
        let capacity = pages * PAGE_SIZE;
        if !path.exists() {
            let mut fresh = path.as_os_str().to_owned();
            fresh.push(".new");
            let fresh = std::path::PathBuf::from(fresh);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&fresh)?;
            let erased = vec![0xFFu8; PAGE_SIZE];
            for page in 0..pages {
                file.write_all_at(&erased, (page * PAGE_SIZE) as u64)?;
            }
            file.sync_all()?;
            drop(file);
            std::fs::rename(&fresh, path)?;
            if sync && let Some(dir) = path.parent() {
                // The rename itself must survive a power loss.
                File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })?
                .sync_all()?;
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len != capacity as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes, this producer's state needs {capacity}: it was made \
                     with other capacities (batch bytes); use another state directory",
                    path.display()
                ),
            ));
        }
        Ok(FileFlash {
            file,
            capacity,
            sync,
            scratch: Vec::new(),
        })
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<u64, FileFlashError> {
        let at = offset as usize;
        if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FileFlashError::NotAligned);
        }
        if at.checked_add(len).is_none_or(|end| end > self.capacity) {
            return Err(FileFlashError::OutOfBounds);
        }
        Ok(at as u64)
    }

    fn synced(&self) -> Result<(), FileFlashError> {
        if self.sync {
            self.file.sync_data().map_err(FileFlashError::Io)?;
        }
        Ok(())
    }
}

impl ErrorType for FileFlash {
    type Error = FileFlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FileFlashError> {
        let at = self.check(offset, bytes.len(), 1)?;
        self.file
            .read_exact_at(bytes, at)
            .map_err(FileFlashError::Io)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

impl NorFlash for FileFlash {
    // 4, not 1: see producer_core::flash on sequential-storage issue #136.
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FileFlashError> {
        if to < from {
            return Err(FileFlashError::OutOfBounds);
        }
        let at = self.check(from, (to - from) as usize, PAGE_SIZE)?;
        let erased = vec![0xFFu8; (to - from) as usize];
        self.file
            .write_all_at(&erased, at)
            .map_err(FileFlashError::Io)?;
        self.synced()
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FileFlashError> {
        let at = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        let mut old = std::mem::take(&mut self.scratch);
        old.resize(bytes.len(), 0);
        let read = self.file.read_exact_at(&mut old, at);
        let clash = old.iter().zip(bytes).position(|(o, n)| !o & n != 0);
        self.scratch = old;
        read.map_err(FileFlashError::Io)?;
        if let Some(k) = clash {
            return Err(FileFlashError::NotErased {
                offset: offset + k as u32,
            });
        }
        self.file
            .write_all_at(bytes, at)
            .map_err(FileFlashError::Io)?;
        self.synced()
    }
}

// Rewriting a word only clears more bits, as on NOR flash.
impl MultiwriteNorFlash for FileFlash {}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("file-flash-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn behaves_like_nor_flash() {
        let path = temp("nor");
        let mut f = FileFlash::open(&path, 2, false).unwrap();
        let mut buf = [0u8; 8];
        f.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        f.write(4, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
        // Clearing more bits is allowed, setting them is not.
        f.write(4, &[0x0E, 0xF0, 0x00, 0xFF]).unwrap();
        assert!(matches!(
            f.write(4, &[0xFF, 0xF0, 0x00, 0xFF]),
            Err(FileFlashError::NotErased { offset: 4 })
        ));
        assert!(matches!(
            f.write(2, &[0; 4]),
            Err(FileFlashError::NotAligned)
        ));
        assert!(matches!(
            f.write((2 * PAGE_SIZE) as u32, &[0; 4]),
            Err(FileFlashError::OutOfBounds)
        ));
        f.erase(0, PAGE_SIZE as u32).unwrap();
        f.read(4, &mut buf[..4]).unwrap();
        assert_eq!(buf[..4], [0xFF; 4]);
        drop(f);
        // Another size is refused rather than misread.
        assert!(FileFlash::open(&path, 3, false).is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_image_cut_while_being_made_is_made_again() {
        let path = temp("cut");
        // What a crash part way through making an image leaves: a short file beside it.
        let mut fresh = path.as_os_str().to_owned();
        fresh.push(".new");
        std::fs::write(&fresh, [0xFFu8; 100]).unwrap();
        let f = FileFlash::open(&path, 2, false).unwrap();
        assert_eq!(f.capacity(), 2 * PAGE_SIZE);
        assert!(!std::path::Path::new(&fresh).exists());
        let _ = std::fs::remove_file(&path);
    }
}
