//! Ingest URLs: `/in/v1/{channel}/{input}/{path}`, checked before anything is read or written.
//!
//! The path is taken from the raw request target and percent-decoded here, once, so that an
//! encoded traversal (`%2e%2e`, `%2f`) is seen for what it is.

use percent_encoding::percent_decode_str;

/// A well-formed ingest target.
#[derive(Debug, PartialEq, Eq)]
pub struct IngestTarget {
    pub channel: String,
    /// 0 for input 1, 1 for input 2.
    pub input: usize,
    /// Decoded, normalized path of the file inside the input (`a/b.ts`), never empty.
    pub file: String,
}

/// Why an ingest path was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("not an ingest path; use /in/v1/{{channel}}/{{input}}/{{file}}")]
    NotIngest,
    #[error("path is {len} bytes, over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("a name in the path is {len} bytes, over the file system's limit of {max}")]
    NameTooLong { len: usize, max: usize },
    #[error("path is not allowed: {0}")]
    Forbidden(&'static str),
    #[error("input '{0}' does not exist; inputs are 1 and 2")]
    BadInput(String),
}

/// Longest name of one path component (Linux's `NAME_MAX`): a longer one is the client's mistake,
/// not a storage error.
pub const MAX_NAME: usize = 255;

/// Parses and checks a raw request path (without query).
pub fn parse(raw: &str, max_len: usize) -> Result<IngestTarget, PathError> {
    if raw.len() > max_len {
        return Err(PathError::TooLong {
            len: raw.len(),
            max: max_len,
        });
    }
    let rest = raw.strip_prefix("/in/v1/").ok_or(PathError::NotIngest)?;
    let mut parts = rest.splitn(3, '/');
    let channel = parts.next().unwrap_or("");
    let input = parts.next().ok_or(PathError::NotIngest)?;
    let file = parts.next().ok_or(PathError::NotIngest)?;
    if channel.is_empty() || input.is_empty() {
        return Err(PathError::NotIngest);
    }
    let channel = decode_component(channel)?;
    let input_s = decode_component(input)?;
    let input = match input_s.as_str() {
        "1" => 0,
        "2" => 1,
        _ => return Err(PathError::BadInput(input_s)),
    };
    if file.is_empty() {
        return Err(PathError::Forbidden("no file name"));
    }
    if file.starts_with('/') {
        return Err(PathError::Forbidden("absolute path"));
    }
    let mut segments = Vec::new();
    for seg in file.split('/') {
        let seg = decode_component(seg)?;
        match seg.as_str() {
            "" => return Err(PathError::Forbidden("empty path segment")),
            "." | ".." => return Err(PathError::Forbidden("'.' or '..' segment")),
            s if s.starts_with('.') => return Err(PathError::Forbidden("hidden file name")),
            s if s.len() > MAX_NAME => {
                return Err(PathError::NameTooLong {
                    len: s.len(),
                    max: MAX_NAME,
                });
            }
            _ => {}
        }
        segments.push(seg);
    }
    Ok(IngestTarget {
        channel,
        input,
        file: segments.join("/"),
    })
}

/// Decodes one path segment; refuses anything that would change the path's structure.
fn decode_component(s: &str) -> Result<String, PathError> {
    let decoded = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| PathError::Forbidden("not UTF-8 after percent-decoding"))?;
    if decoded.contains('\0') {
        return Err(PathError::Forbidden("NUL byte"));
    }
    if decoded.contains(['/', '\\']) {
        return Err(PathError::Forbidden("encoded '/' or '\\'"));
    }
    if decoded.chars().any(char::is_control) {
        return Err(PathError::Forbidden("control character"));
    }
    Ok(decoded.into_owned())
}

/// True for names the store treats as playlists.
pub fn is_playlist(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    lower.ends_with(".m3u8") || lower.ends_with(".m3u")
}

/// Stable, URL-safe rendition id from the media playlist's path inside the input:
/// `stream_0.m3u8` → `stream_0`; `720p/index.m3u8` → `720p`; `a b/x.m3u8` → `a_b_x`.
pub fn rendition_id(playlist_path: &str) -> String {
    let stem = playlist_path
        .rsplit_once('.')
        .map_or(playlist_path, |(s, _)| s);
    let generic = [
        "index",
        "playlist",
        "prog_index",
        "chunklist",
        "media",
        "main",
    ];
    let base = match stem.rsplit_once('/') {
        Some((dir, name)) if generic.contains(&name.to_ascii_lowercase().as_str()) => dir,
        _ => stem,
    };
    let mut id: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id == "index" || id == "status" {
        // "index" would clash with the channel's own index.m3u8, "status" with /status.
        id.insert_str(0, "r_");
    }
    id.truncate(96);
    id
}

/// Resolves a segment URI from a media playlist at `playlist_path` to a file path inside the
/// same input. `None` when it points outside the input (another host, another channel, `..`).
pub fn resolve_segment_uri(
    playlist_path: &str,
    uri: &str,
    channel: &str,
    input: usize,
) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    let prefix = format!("/in/v1/{channel}/{}/", input + 1);
    let relative: String = if let Some(after_scheme) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        let path = &after_scheme[after_scheme.find('/')?..];
        path.strip_prefix(&prefix)?.to_owned()
    } else if uri.starts_with('/') {
        uri.strip_prefix(&prefix)?.to_owned()
    } else {
        match playlist_path.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{uri}"),
            None => uri.to_owned(),
        }
    };
    let mut out = Vec::new();
    for seg in relative.split('/') {
        let seg = decode_component(seg).ok()?;
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(seg),
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths() {
        let t = parse("/in/v1/news/2/hd/seg%201.ts", 1024).unwrap();
        assert_eq!(t.channel, "news");
        assert_eq!(t.input, 1);
        assert_eq!(t.file, "hd/seg 1.ts");
    }

    #[test]
    fn traversal_and_friends_are_refused() {
        for bad in [
            "/in/v1/news/1/../x.ts",
            "/in/v1/news/1/a/%2e%2e/x.ts",
            "/in/v1/news/1/%2E%2E/x.ts",
            "/in/v1/news/1/a%2f..%2fb.ts",
            "/in/v1/news/1/a%5cb.ts",
            "/in/v1/news/1//etc/passwd",
            "/in/v1/news/1/a%00.ts",
            "/in/v1/news/1/a//b.ts",
            "/in/v1/news/1/.hidden",
            "/in/v1/news/1/%ff.ts",
        ] {
            assert!(
                matches!(parse(bad, 1024), Err(PathError::Forbidden(_))),
                "{bad} should be forbidden, got {:?}",
                parse(bad, 1024)
            );
        }
        assert_eq!(
            parse("/in/v1/news/3/a.ts", 1024),
            Err(PathError::BadInput("3".into()))
        );
        assert!(matches!(
            parse(&format!("/in/v1/news/1/{}", "a".repeat(2000)), 1024),
            Err(PathError::TooLong { .. })
        ));
        assert_eq!(parse("/in/v1/news/1", 1024), Err(PathError::NotIngest));
    }

    #[test]
    fn rendition_ids() {
        assert_eq!(rendition_id("stream_0.m3u8"), "stream_0");
        assert_eq!(rendition_id("720p/index.m3u8"), "720p");
        assert_eq!(rendition_id("a b/x.m3u8"), "a_b_x");
        assert_eq!(rendition_id("index.m3u8"), "r_index");
    }

    #[test]
    fn segment_uris_resolve_inside_the_input_only() {
        assert_eq!(
            resolve_segment_uri("hd/index.m3u8", "seg1.ts", "news", 0).as_deref(),
            Some("hd/seg1.ts")
        );
        assert_eq!(
            resolve_segment_uri("a.m3u8", "http://h:1/in/v1/news/1/x/s.ts?x=1", "news", 0)
                .as_deref(),
            Some("x/s.ts")
        );
        assert_eq!(
            resolve_segment_uri("a.m3u8", "/in/v1/other/1/s.ts", "news", 0),
            None
        );
        assert_eq!(resolve_segment_uri("a.m3u8", "../../x.ts", "news", 0), None);
    }
}
