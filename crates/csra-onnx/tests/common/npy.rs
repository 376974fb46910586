//! `.npy` files (format version 1.0, little-endian `f32`, C order): how tensors travel to and
//! from the Python cross-check without a JSON round trip that would print and re-parse floats.

use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Writes `data` with `shape` to `path` as `numpy.save` would.
pub fn write(path: &Path, shape: &[usize], data: &[f32]) {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "{}",
        path.display()
    );
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    // A one-element Python tuple needs its trailing comma.
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic, version and length take 10 bytes; the header ends in '\n' and the data starts on a
    // 64-byte boundary, as the format asks.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend([1, 0]);
    bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// Reads a little-endian `f32`, C-order `.npy` file: its shape and data. Anything else (another
/// dtype, Fortran order) fails, since the cross-check promises `float32` outputs.
pub fn read(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let what = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(bytes.starts_with(MAGIC), "{what}: not an .npy file");
    // Versions 2 and 3 differ from 1 only in a 4-byte header length.
    let (length, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(n).unwrap(), 12)
        }
        v => panic!("{what}: .npy version {v}"),
    };
    let header = std::str::from_utf8(&bytes[start..start + length]).unwrap();
    assert!(
        header.contains("'descr': '<f4'"),
        "{what}: not little-endian float32: {header}"
    );
    assert!(
        header.contains("'fortran_order': False"),
        "{what}: not C order: {header}"
    );
    let shape = header
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("{what}: no shape in {header}"))
        .0;
    let shape: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[start + length..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{what}: data length disagrees with shape {shape:?}"
    );
    (shape, data)
}
