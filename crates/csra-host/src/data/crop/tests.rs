use csra_core::BBox;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const OFFICIAL_SCALE: (f32, f32) = (0.7, 1.0);
const OFFICIAL_RATIO: (f32, f32) = (3.0 / 4.0, 4.0 / 3.0);

#[test]
fn random_resized_crops_cover_the_scale_and_ratio_ranges_and_stay_inside() {
    let mut rng = StdRng::seed_from_u64(7);
    for (width, height) in [(640, 480), (480, 640), (500, 500), (300, 200), (64, 48)] {
        let (w_img, h_img) = (f64::from(width), f64::from(height));
        let (mut min_area, mut max_area) = (f64::MAX, 0.0f64);
        let (mut min_aspect, mut max_aspect) = (f64::MAX, 0.0f64);
        for _ in 0..4000 {
            let r = random_resized_crop(&mut rng, width, height, OFFICIAL_SCALE, OFFICIAL_RATIO);
            for v in [r.left, r.top, r.width, r.height] {
                assert_eq!(v, v.round(), "{r:?} is not on whole pixels");
            }
            assert!(r.left >= 0.0 && r.top >= 0.0, "{r:?}");
            assert!(
                r.left + r.width <= w_img && r.top + r.height <= h_img,
                "{r:?}"
            );
            // Each side is the true draw rounded to a whole pixel, so the true area and aspect
            // lie in these intervals, which must meet the requested ranges.
            let full = w_img * h_img;
            let (w, h) = (r.width, r.height);
            let area = w * h / full;
            let true_area = ((w - 0.5) * (h - 0.5) / full, (w + 0.5) * (h + 0.5) / full);
            assert!(
                true_area.0 <= 1.0 && true_area.1 >= 0.7,
                "{width}×{height}: {r:?} covers {area}"
            );
            let aspect = w / h;
            let true_aspect = ((w - 0.5) / (h + 0.5), (w + 0.5) / (h - 0.5));
            assert!(
                true_aspect.0 <= 4.0 / 3.0 && true_aspect.1 >= 0.75,
                "{width}×{height}: {r:?} has aspect {aspect}"
            );
            min_area = min_area.min(area);
            max_area = max_area.max(area);
            min_aspect = min_aspect.min(aspect);
            max_aspect = max_aspect.max(aspect);
        }
        // The draws span the ranges rather than sitting in one corner of them, as far as the
        // picture allows: a 3:2 picture has no 4:3 crop of more than 89% of it, and on a 4:3
        // picture a tall crop of 70% would not fit, so only a square one reaches both ratios.
        assert!(min_area < 0.72, "{width}×{height}: {min_area}");
        if (0.75..=4.0 / 3.0).contains(&(w_img / h_img)) {
            assert!(max_area > 0.97, "{width}×{height}: {max_area}");
        }
        if width == height {
            assert!(
                min_aspect < 0.78 && max_aspect > 1.28,
                "{min_aspect}..{max_aspect}"
            );
        }
    }
}

#[test]
fn random_resized_crop_positions_spread_over_the_picture() {
    let mut rng = StdRng::seed_from_u64(3);
    let lefts: Vec<f64> = (0..2000)
        .map(|_| random_resized_crop(&mut rng, 640, 480, OFFICIAL_SCALE, OFFICIAL_RATIO).left)
        .collect();
    let at_zero = lefts.iter().filter(|&&l| l == 0.0).count();
    assert!(
        at_zero < 200,
        "{at_zero} of 2000 crops start at the left edge"
    );
    assert!(lefts.iter().any(|&l| l > 150.0));
}

#[test]
fn an_elongated_picture_falls_back_to_the_widest_centred_crop_in_range() {
    // No crop of at least 70% of a 1000×100 strip has an aspect ratio up to 4/3, so after ten
    // tries torchvision takes h = 100, w = round(100 · 4/3) = 133, centred: left = 867 // 2.
    let mut rng = StdRng::seed_from_u64(1);
    let r = random_resized_crop(&mut rng, 1000, 100, OFFICIAL_SCALE, OFFICIAL_RATIO);
    assert_eq!(
        r,
        Rect {
            left: 433.0,
            top: 0.0,
            width: 133.0,
            height: 100.0
        }
    );
    // Tall: w = 100, h = round(100 / 0.75) = 133, top = 867 // 2.
    let r = random_resized_crop(&mut rng, 100, 1000, OFFICIAL_SCALE, OFFICIAL_RATIO);
    assert_eq!(
        (r.left, r.top, r.width, r.height),
        (0.0, 433.0, 100.0, 133.0)
    );
}

#[test]
fn a_fixed_scale_of_one_with_a_square_ratio_takes_the_whole_square_picture() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20 {
        let r = random_resized_crop(&mut rng, 50, 50, (1.0, 1.0), (1.0, 1.0));
        assert_eq!(r, Rect::full(50, 50));
    }
}

#[test]
fn sample_region_rounds_and_clips_the_box() {
    assert_eq!(sample_region(None, 40, 30), Some(Rect::full(40, 30)));
    let b = BBox {
        x: 10.4,
        y: -5.0,
        width: 40.0,
        height: 20.6,
    };
    // Edges 10.4 → 10, 50.4 → 50 clipped to 40, −5 → 0, 15.6 → 16.
    assert_eq!(
        sample_region(Some(&b), 40, 30),
        Some(Rect {
            left: 10.0,
            top: 0.0,
            width: 30.0,
            height: 16.0
        })
    );
    let outside = BBox {
        x: 45.0,
        y: 0.0,
        width: 10.0,
        height: 10.0,
    };
    assert_eq!(sample_region(Some(&outside), 40, 30), None);
}

#[test]
fn train_rect_stays_inside_the_region() {
    let region = Rect {
        left: 100.0,
        top: 50.0,
        width: 60.0,
        height: 80.0,
    };
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..500 {
        let r = train_rect(&mut rng, region, OFFICIAL_SCALE, OFFICIAL_RATIO);
        assert!(r.left >= 100.0 && r.left + r.width <= 160.0, "{r:?}");
        assert!(r.top >= 50.0 && r.top + r.height <= 130.0, "{r:?}");
    }
}
