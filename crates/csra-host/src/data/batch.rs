//! One batch of network inputs with their labels.

/// A batch: images as NCHW floats, multi-hot targets and the label mask, row-major `[N, C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The images, `N × 3 × height × width` floats.
    pub images: Vec<f32>,
    /// `[N, 3, height, width]`; `N` may be below the batch size (last batch, skipped images).
    pub shape: [usize; 4],
    /// `N × C` targets: 1.0 where the class is present, else 0.0.
    pub targets: Vec<f32>,
    /// `N × C` loss mask: 0.0 where the label is ignored, else 1.0.
    pub mask: Vec<f32>,
    /// The dataset index of each image, in batch order.
    pub indices: Vec<usize>,
    /// `C`, the number of classes.
    pub num_classes: usize,
}

impl Batch {
    /// The number of images, `N`.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}
