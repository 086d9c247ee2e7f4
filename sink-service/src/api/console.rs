// SPDX-License-Identifier: MIT OR Apache-2.0
//! The web console's files, part of the binary (nothing is fetched at run time: the product
//! runs air-gapped): `GET /` is the page, `GET /console/<file>` its script, style and the
//! vendored chart library (uPlot 1.6.32, MIT, `console/vendor/`, pinned by SHA-256 below and in
//! docs/console.md). The page reads everything through the same HTTPS API (`/v1/...`), signed
//! in with a session ([`super::session`]).

use bytes::Bytes;
use sha2::Digest;

use super::{Body, Reply};

/// uPlot's minified IIFE build as published on npm (`uplot@1.6.32`, `dist/uPlot.iife.min.js`).
pub const UPLOT_SHA256: &str = "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f";
/// Its stylesheet (`dist/uPlot.min.css`).
pub const UPLOT_CSS_SHA256: &str =
    "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04";

/// The console's files: (path under `/console/`, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/app.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/vendor/uPlot.min.css"),
    ),
];

/// The Content-Security-Policy of every answer: scripts, styles and connections only from this
/// origin, no inline script, no framing; images also from `blob:` (stored inspection images are
/// fetched with the session and shown from memory).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The console's answer to `method path`, or `None` when the path is not the console's.
pub fn serve(method: &str, path: &str) -> Option<Reply> {
    let name = match path {
        "/" | "/console" | "/console/" => "index.html",
        _ => path.strip_prefix("/console/")?,
    };
    if method != "GET" && method != "HEAD" {
        return Some(Reply::error(405, "use GET").with("allow", "GET, HEAD".into()));
    }
    Some(match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => Reply {
            status: 200,
            headers: vec![("etag", etag(bytes))],
            body: Body::Raw(content_type, Bytes::from_static(bytes)),
        },
        None => Reply::not_found(),
    })
}

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(sha2::Sha256::digest(bytes))[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> &'static [u8] {
        FILES.iter().find(|(n, _, _)| *n == name).unwrap().2
    }

    #[test]
    fn the_vendored_chart_library_is_the_pinned_one() {
        let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
        assert_eq!(sha(file("vendor/uPlot.iife.min.js")), UPLOT_SHA256);
        assert_eq!(sha(file("vendor/uPlot.min.css")), UPLOT_CSS_SHA256);
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script() {
        let page = String::from_utf8(file("index.html").to_vec()).unwrap();
        for forbidden in [
            "http://", "https://", "//cdn", "onclick=", "onload=", "style=\"",
        ] {
            assert!(!page.contains(forbidden), "index.html holds {forbidden}");
        }
        // Every <script> has a src under /console/ (no inline body).
        for script in page.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(
                tag.contains("src=\"/console/"),
                "inline or foreign script: {tag}"
            );
            assert!(script.split('>').nth(1).unwrap().starts_with("</script"));
        }
        let app = String::from_utf8(file("app.js").to_vec()).unwrap();
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!app.contains(forbidden), "app.js uses {forbidden}");
        }
    }

    #[test]
    fn paths_map_to_files_and_nothing_else() {
        for path in [
            "/",
            "/console/",
            "/console/app.js",
            "/console/vendor/uPlot.min.css",
        ] {
            let reply = serve("GET", path).unwrap();
            assert_eq!(reply.status, 200, "{path}");
        }
        assert_eq!(serve("GET", "/console/../Cargo.toml").unwrap().status, 404);
        assert_eq!(serve("GET", "/console/nope.js").unwrap().status, 404);
        assert_eq!(serve("POST", "/").unwrap().status, 405);
        assert!(serve("GET", "/v1/health").is_none());
        assert!(serve("GET", "/metrics").is_none());
    }
}
