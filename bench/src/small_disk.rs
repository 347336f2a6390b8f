//! A small tmpfs whose filling makes the server's database unwritable, for real: SQLite
//! gets ENOSPC from the kernel, not from a mock. Mounting needs root (CAP_SYS_ADMIN).

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// A tmpfs of `size` (`256m`), unmounted on drop.
    pub fn mount(size: &str) -> anyhow::Result<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("switchboard-disk-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let status = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&dir).status()?;
        if !status.success() {
            let _ = std::fs::remove_dir(&dir);
            anyhow::bail!("cannot mount a tmpfs of {size} on {} (this scenario needs root)", dir.display());
        }
        Ok(SmallDisk(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes zeros until the disk is full; the filler's path, to remove it.
    pub fn fill(&self) -> anyhow::Result<PathBuf> {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        // the last partial megabyte: byte by byte is too slow, 4 KiB is a page
        let page = vec![0u8; 4096];
        while f.write_all(&page).is_ok() {}
        let _ = f.sync_all();
        Ok(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
