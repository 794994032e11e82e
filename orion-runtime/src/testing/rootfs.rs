//! A busybox root filesystem as a tar archive, built in Rust from the host's static busybox.

use std::path::{Path, PathBuf};

use crate::error::{Result, RuntimeError};

/// Where the host's static busybox is looked for, in order (Debian's `busybox-static`).
pub const BUSYBOX_PATHS: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// The applets linked into `/bin` (each a symlink to `busybox`).
pub const APPLETS: &[&str] = &[
    "[", "ash", "awk", "cat", "chmod", "cp", "date", "dd", "df", "du", "echo", "env", "false",
    "free", "grep", "head", "hostname", "httpd", "id", "ip", "kill", "ln", "ls", "mkdir", "mv",
    "nc", "nslookup", "ping", "printf", "ps", "pwd", "rm", "sed", "seq", "sh", "sleep", "stat",
    "tail", "tee", "test", "timeout", "top", "touch", "true", "uname", "wc", "wget", "yes",
];

/// The body of `/www/index.html`, served by [`super::http_server_spec`].
pub const INDEX_HTML: &str = "<html><body>orion test image</body></html>\n";

/// All entries get this modification time, so the archive is the same bytes on every build.
const MTIME: u64 = 1_700_000_000;

/// The host's static busybox, or an error saying how to install it.
pub fn find_busybox() -> Result<PathBuf> {
    BUSYBOX_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| RuntimeError::ImageUnavailable {
            image: super::TEST_IMAGE.to_owned(),
            reason: format!(
                "no static busybox at {}; install Debian's busybox-static (make setup)",
                BUSYBOX_PATHS.join(" or ")
            ),
        })
}

/// A root filesystem tar: `/bin/busybox` with its applets as symlinks, `/etc/passwd`,
/// `/etc/group`, `/tmp` (mode 1777), `/root` and `/www/index.html`.
///
/// The same bytes every time on one host (fixed owners and times). Import it with
/// `docker import` (what [`super::ensure_test_image`] does) or unpack it as a containerd layer.
pub fn busybox_rootfs_tar() -> Result<Vec<u8>> {
    let busybox_path = find_busybox()?;
    let busybox = std::fs::read(&busybox_path)
        .map_err(|e| RuntimeError::io(format!("reading {}", busybox_path.display()), e))?;
    build_tar(&busybox).map_err(|e| RuntimeError::io("building the busybox root filesystem", e))
}

fn build_tar(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in [
        "bin", "etc", "root", "www", "proc", "sys", "dev", "var", "usr",
    ] {
        append_dir(&mut builder, dir, 0o755)?;
    }
    append_dir(&mut builder, "tmp", 0o1777)?;
    append_file(&mut builder, "bin/busybox", busybox, 0o755)?;
    for applet in APPLETS {
        let mut header = header(tar::EntryType::Symlink, 0o777, 0);
        builder.append_link(&mut header, format!("bin/{applet}"), "busybox")?;
    }
    append_file(
        &mut builder,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    )?;
    append_file(
        &mut builder,
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    append_file(&mut builder, "www/index.html", INDEX_HTML.as_bytes(), 0o644)?;
    builder.into_inner()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> std::io::Result<()> {
    let mut header = header(tar::EntryType::Directory, mode, 0);
    builder.append_data(&mut header, format!("{path}/"), std::io::empty())
}

fn append_file(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut header = header(tar::EntryType::Regular, mode, bytes.len() as u64);
    builder.append_data(&mut header, path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_holds_busybox_its_applets_and_the_web_root() {
        let bytes = busybox_rootfs_tar().expect("a static busybox is installed (make setup)");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if path == "bin/sh" {
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_string_lossy(),
                    "busybox"
                );
            }
            if path == "tmp/" {
                assert_eq!(entry.header().mode().unwrap(), 0o1777);
            }
            names.push(path);
        }
        for expected in [
            "bin/busybox",
            "bin/sh",
            "bin/httpd",
            "etc/passwd",
            "www/index.html",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn rootfs_is_the_same_bytes_every_time() {
        assert_eq!(busybox_rootfs_tar().unwrap(), busybox_rootfs_tar().unwrap());
    }
}
