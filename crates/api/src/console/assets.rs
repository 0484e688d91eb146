//! The console's two static files, compiled into the binary and served under a name
//! that carries a hash of their content (`console.3f9a….css`), so they can be cached
//! for a year and a new build is fetched at once.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

struct Asset {
    name: String,
    body: &'static str,
    content_type: &'static str,
}

fn hashed(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = Sha256::digest(body.as_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Asset {
        name: format!("{stem}.{hash}.{extension}"),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        hashed("console", "css", CSS, "text/css; charset=utf-8"),
        hashed("console", "js", JS, "text/javascript; charset=utf-8"),
    ]
});

/// The URL of the stylesheet.
pub(crate) fn css_url() -> String {
    format!("/console/assets/{}", ASSETS[0].name)
}

/// The URL of the script.
pub(crate) fn js_url() -> String {
    format!("/console/assets/{}", ASSETS[1].name)
}

/// `GET /console/assets/{name}`: an asset by its hashed name, cached for a year.
pub(crate) async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.name == *name) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body("no such asset"),
    }
}

#[cfg(test)]
mod tests {
    use super::CSS;

    /// The WCAG relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let value = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if value <= 0.039_28 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    #[test]
    fn the_focus_outline_stands_out_on_white_the_page_and_the_header() {
        let focus: Vec<&str> = CSS
            .lines()
            .filter_map(|line| line.trim().strip_prefix("--focus:"))
            .map(|value| value.trim().trim_end_matches(';'))
            .collect();
        assert!(!focus.is_empty(), "the stylesheet defines --focus");
        for colour in focus {
            assert_eq!(colour.len(), 7, "{colour} is #rrggbb");
            // The surface, the page background and the top bar.
            for background in ["#ffffff", "#f6f7f9", "#111827"] {
                let ratio = contrast(colour, background);
                assert!(ratio >= 3.0, "focus {colour} on {background}: {ratio:.2}:1");
            }
        }
        assert!(CSS.contains("background: #111827;"), "the header's colour");
    }
}
