//! The avatar cache: images by SHA-1 (XEP-0084 / XEP-0153 ids) in one directory per
//! profile, shared by its accounts. A file is only ever written after its hash was checked,
//! and under a name derived from that hash, so a hostile server cannot choose file names.

use std::path::{Path, PathBuf};

/// Extensions a cached avatar may have (from its content, never from the sender's claim).
const EXTENSIONS: [&str; 3] = ["png", "jpg", "webp"];

#[derive(Debug, Clone)]
pub struct AvatarCache {
    dir: PathBuf,
}

fn valid_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl AvatarCache {
    pub fn new(dir: impl Into<PathBuf>) -> AvatarCache {
        AvatarCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached image with this id, if we have it.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        if !valid_id(id) {
            return None;
        }
        let id = id.to_ascii_lowercase();
        EXTENSIONS
            .iter()
            .map(|ext| self.dir.join(format!("{id}.{ext}")))
            .find(|p| p.is_file())
    }

    /// Stores image bytes whose SHA-1 was verified to be `id`; returns the file.
    pub fn store(&self, id: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        if !valid_id(id) || crate::proto::profile::sha1_hex(bytes) != id.to_ascii_lowercase() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "avatar bytes do not match their id",
            ));
        }
        let ext = match image::guess_format(bytes) {
            Ok(image::ImageFormat::Png) => "png",
            Ok(image::ImageFormat::Jpeg) => "jpg",
            Ok(image::ImageFormat::WebP) => "webp",
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "avatar is not a PNG, JPEG or WebP image",
                ));
            }
        };
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{}.{ext}", id.to_ascii_lowercase()));
        let tmp = self
            .dir
            .join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_verified_images_under_their_hash() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = AvatarCache::new(dir.path().join("avatars"));
        let img = crate::proto::profile::prepare_avatar(&{
            let mut png = Vec::new();
            image::RgbImage::new(4, 4)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            png
        })?;
        assert!(cache.path(&img.id).is_none());
        let p = cache.store(&img.id, &img.bytes)?;
        assert_eq!(cache.path(&img.id), Some(p.clone()));
        assert!(p.extension().is_some_and(|e| e == "png"));
        assert!(cache.store(&img.id, b"other bytes").is_err());
        assert!(cache.store("../../etc/passwd", &img.bytes).is_err());
        assert!(cache.path("../x").is_none());
        Ok(())
    }
}
