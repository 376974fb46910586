//! `torch.save` files: a zip archive with `<prefix>/data.pkl` (the pickled state dict) and one
//! record `<prefix>/data/<key>` of raw little-endian bytes per storage.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use tch::{Device, Kind, Tensor};
use zip::read::{ArchiveOffset, Config};
use zip::ZipArchive;

use csra_pickle::{
    read_checkpoint, read_state_dict, CheckpointFile, PickleError, StorageKind, StorageRef,
    TensorRecord,
};

use super::WeightsError;

/// The libtorch element kind of a storage.
fn kind(storage: StorageKind) -> Kind {
    match storage {
        StorageKind::Float32 => Kind::Float,
        StorageKind::Float64 => Kind::Double,
        StorageKind::Float16 => Kind::Half,
        StorageKind::BFloat16 => Kind::BFloat16,
        StorageKind::Int64 => Kind::Int64,
        StorageKind::Int32 => Kind::Int,
        StorageKind::Int16 => Kind::Int16,
        StorageKind::Int8 => Kind::Int8,
        StorageKind::UInt8 => Kind::Uint8,
        StorageKind::Bool => Kind::Bool,
    }
}

/// Reads every tensor of a `torch.save`d state dict, in file order, as independent contiguous
/// CPU tensors.
pub(crate) fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    Ok(read_records(path, |pickle| Ok((read_state_dict(pickle)?, ())))?.0)
}

/// Reads a `torch.save`d state dict, or a training checkpoint nesting one: its tensors as
/// [`read_pth`] does, and what [`read_checkpoint`] found around them (with `tensors` empty).
pub(crate) fn read_pth_checkpoint(
    path: &Path,
) -> Result<(Vec<(String, Tensor)>, CheckpointFile), WeightsError> {
    read_records(path, |pickle| {
        let mut file = read_checkpoint(pickle)?;
        Ok((std::mem::take(&mut file.tensors), file))
    })
}

/// Opens the archive, parses its `data.pkl` with `parse` and builds the tensors it lists.
fn read_records<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<(Vec<(String, TensorRecord)>, T), PickleError>,
) -> Result<(Vec<(String, Tensor)>, T), WeightsError> {
    let file = File::open(path).map_err(|source| WeightsError::Io {
        path: path.to_owned(),
        source,
    })?;
    // torch.save writes nothing before the archive. Detecting an offset misfires on its files:
    // their zip64 end records sit between the central directory and the end record, and when
    // the first header is exactly as long as those two records (a 21-character file stem),
    // the zip crate takes the second header for the first.
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let mut archive = ZipArchive::with_config(config, BufReader::new(file)).map_err(|source| {
        WeightsError::Zip {
            path: path.to_owned(),
            source,
        }
    })?;
    let mut reader = Archive {
        path,
        prefix: data_pkl_prefix(&archive, path)?,
        archive: &mut archive,
    };
    reader.check_byte_order()?;
    let pickle = reader.record("data.pkl")?;
    let (records, extra) = parse(&pickle).map_err(|e| reader.invalid(format!("data.pkl {e}")))?;
    let mut storages = HashMap::new();
    let tensors = records
        .into_iter()
        .map(|(name, record)| {
            let tensor = reader.tensor(&name, &record, &mut storages)?;
            Ok((name, tensor))
        })
        .collect::<Result<_, WeightsError>>()?;
    Ok((tensors, extra))
}

/// The folder that holds `data.pkl`: torch.save names it after the file (`archive/` for a
/// stream), so it is found rather than assumed.
fn data_pkl_prefix<R: Read + std::io::Seek>(
    archive: &ZipArchive<R>,
    path: &Path,
) -> Result<String, WeightsError> {
    let mut prefixes: Vec<String> = archive
        .file_names()
        .filter_map(|name| Some(name.ok()?.strip_suffix("data.pkl")?.to_owned()))
        .filter(|prefix| prefix.ends_with('/') && prefix.matches('/').count() == 1)
        .collect();
    match (prefixes.pop(), prefixes.is_empty()) {
        (Some(prefix), true) => Ok(prefix),
        (Some(_), false) => Err(WeightsError::invalid(
            path,
            "the zip archive holds several data.pkl records",
        )),
        (None, _) => Err(WeightsError::invalid(
            path,
            "the zip archive has no <name>/data.pkl record, so torch.save did not write it",
        )),
    }
}

struct Archive<'a, R: Read + std::io::Seek> {
    path: &'a Path,
    prefix: String,
    archive: &'a mut ZipArchive<R>,
}

impl<R: Read + std::io::Seek> Archive<'_, R> {
    fn invalid(&self, message: impl Into<String>) -> WeightsError {
        WeightsError::invalid(self.path, message)
    }

    /// The bytes of `<prefix>/<name>`.
    fn record(&mut self, name: &str) -> Result<Vec<u8>, WeightsError> {
        let full = format!("{}{name}", self.prefix);
        let mut entry = self.archive.by_name(&full).map_err(|source| match source {
            zip::result::ZipError::FileNotFound => {
                WeightsError::invalid(self.path, format!("the zip archive has no record {full}"))
            }
            source => WeightsError::Zip {
                path: self.path.to_owned(),
                source,
            },
        })?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| WeightsError::invalid(self.path, format!("cannot read {full}: {e}")))?;
        Ok(bytes)
    }

    /// Storages are raw bytes in the writer's byte order; only little-endian is read here.
    fn check_byte_order(&mut self) -> Result<(), WeightsError> {
        // Files written before torch 1.10 have no byteorder record and are little-endian.
        let name = format!("{}byteorder", self.prefix);
        if self.archive.index_for_name(&name).is_none() {
            return Ok(());
        }
        let order = self.record("byteorder")?;
        if order == b"little" {
            Ok(())
        } else {
            Err(self.invalid(format!(
                "storages are in {:?} byte order; only little-endian files are supported",
                String::from_utf8_lossy(&order)
            )))
        }
    }

    /// A storage as a flat tensor, read once and shared by the views onto it.
    fn storage<'s>(
        &mut self,
        storage: &StorageRef,
        cache: &'s mut HashMap<String, Tensor>,
    ) -> Result<&'s Tensor, WeightsError> {
        match cache.entry(storage.key.clone()) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => Ok(entry.insert(self.read_storage(storage)?)),
        }
    }

    fn read_storage(&mut self, storage: &StorageRef) -> Result<Tensor, WeightsError> {
        let bytes = self.record(&format!("data/{}", storage.key))?;
        let element = kind(storage.kind).elt_size_in_bytes();
        let expected = usize::try_from(storage.numel)
            .ok()
            .and_then(|n| n.checked_mul(element));
        if expected != Some(bytes.len()) {
            return Err(self.invalid(format!(
                "storage {} should hold {} elements of {} bytes but has {} bytes (truncated or \
                 corrupt file?)",
                storage.key,
                storage.numel,
                element,
                bytes.len()
            )));
        }
        Tensor::f_from_data_size(&bytes, &[storage.numel], kind(storage.kind)).map_err(|source| {
            WeightsError::Tch {
                path: self.path.to_owned(),
                name: format!("storage {}", storage.key),
                source,
            }
        })
    }

    /// The tensor `record` describes, copied out of its storage into its own contiguous memory.
    fn tensor(
        &mut self,
        name: &str,
        record: &TensorRecord,
        cache: &mut HashMap<String, Tensor>,
    ) -> Result<Tensor, WeightsError> {
        check_view(record)
            .map_err(|message| self.invalid(format!("tensor {name:?}: {message}")))?;
        let storage = self.storage(&record.storage, cache)?;
        let tch_error = |source| WeightsError::Tch {
            path: self.path.to_owned(),
            name: name.to_owned(),
            source,
        };
        let view = storage
            .f_as_strided(&record.size, &record.stride, record.offset)
            .map_err(tch_error)?;
        let mut tensor =
            Tensor::f_empty(&record.size, (view.kind(), Device::Cpu)).map_err(tch_error)?;
        tensor.f_copy_(&view).map_err(tch_error)?;
        Ok(tensor)
    }
}

/// Checks that the strided view lies inside its storage, so libtorch never reads out of bounds.
fn check_view(record: &TensorRecord) -> Result<(), String> {
    let TensorRecord {
        storage,
        offset,
        size,
        stride,
    } = record;
    if *offset < 0 || size.iter().chain(stride).any(|&v| v < 0) {
        return Err(format!(
            "negative offset, size or stride (offset {offset}, size {size:?}, stride {stride:?})"
        ));
    }
    if size.contains(&0) {
        return Ok(());
    }
    let last = size.iter().zip(stride).try_fold(*offset, |end, (&n, &s)| {
        end.checked_add((n - 1).checked_mul(s)?)
    });
    match last {
        Some(last) if last < storage.numel => Ok(()),
        _ => Err(format!(
            "the view (offset {offset}, size {size:?}, stride {stride:?}) reaches past the end \
             of storage {} ({} elements)",
            storage.key, storage.numel
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(numel: i64, offset: i64, size: &[i64], stride: &[i64]) -> TensorRecord {
        TensorRecord {
            storage: StorageRef {
                kind: StorageKind::Float32,
                key: "0".into(),
                numel,
            },
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn views_inside_their_storage_pass() {
        assert!(check_view(&record(6, 0, &[2, 3], &[3, 1])).is_ok());
        assert!(check_view(&record(6, 0, &[3, 2], &[1, 3])).is_ok());
        assert!(check_view(&record(10, 3, &[4], &[1])).is_ok());
        assert!(check_view(&record(6, 0, &[3, 6], &[0, 1])).is_ok());
        assert!(check_view(&record(1, 0, &[], &[])).is_ok());
        // An empty view reads nothing, wherever it points.
        assert!(check_view(&record(0, 0, &[0, 3], &[3, 1])).is_ok());
    }

    #[test]
    fn views_past_their_storage_fail() {
        for bad in [
            record(5, 0, &[2, 3], &[3, 1]),
            record(10, 7, &[4], &[1]),
            record(0, 0, &[], &[]),
            record(6, -1, &[2], &[1]),
            record(6, 0, &[2], &[-1]),
            record(6, 0, &[2, i64::MAX], &[i64::MAX, 1]),
        ] {
            assert!(check_view(&bad).is_err(), "{bad:?}");
        }
    }
}
