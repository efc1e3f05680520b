//! Provider presets and the endpoint checks of upstream's troubleshooting
//! guide (vsync-formats §8.2): what each S3-compatible provider needs, and
//! the configuration mistakes that otherwise surface as an opaque
//! `SignatureDoesNotMatch` or a `//manifest` key.

use std::fmt;
use std::str::FromStr;

/// An S3-compatible provider. The preset decides the quirks vsync applies;
/// it is detected from the endpoint's host, or chosen explicitly (MinIO and
/// other self-hosted servers have no recognisable host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon S3 (`s3.<region>.amazonaws.com`).
    Aws,
    /// Cloudflare R2 (`<account>.r2.cloudflarestorage.com`, region `auto`).
    R2,
    /// Backblaze B2 (`s3.<region>.backblazeb2.com`).
    B2,
    /// Hetzner Object Storage (`<location>.your-objectstorage.com`), Ceph
    /// RGW underneath: unquoted ETags, and `If-Match` must be sent unquoted.
    Hetzner,
    /// MinIO, self-hosted.
    Minio,
    /// Wasabi (`s3.<region>.wasabisys.com`).
    Wasabi,
    /// DigitalOcean Spaces (`<region>.digitaloceanspaces.com`).
    DigitalOcean,
    /// Any other S3-compatible endpoint.
    Custom,
}

/// How the provider wants the entity tag in `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatchForm {
    /// `If-Match: "abc"`, as RFC 9110 and AWS specify.
    Quoted,
    /// `If-Match: abc`: Ceph RGW (Hetzner) answers 412 to the quoted form
    /// even when the tag matches.
    Bare,
}

impl Provider {
    /// Every preset, for help texts and parsing.
    pub const ALL: [Provider; 8] = [
        Provider::Aws,
        Provider::R2,
        Provider::B2,
        Provider::Hetzner,
        Provider::Minio,
        Provider::Wasabi,
        Provider::DigitalOcean,
        Provider::Custom,
    ];

    /// The preset's short name (`aws`, `r2`, `b2`, `hetzner`, `minio`,
    /// `wasabi`, `digitalocean`, `custom`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::R2 => "r2",
            Provider::B2 => "b2",
            Provider::Hetzner => "hetzner",
            Provider::Minio => "minio",
            Provider::Wasabi => "wasabi",
            Provider::DigitalOcean => "digitalocean",
            Provider::Custom => "custom",
        }
    }

    /// Recognises a provider from an endpoint host; `Custom` when unknown.
    pub fn detect(host: &str) -> Provider {
        let host = host.to_ascii_lowercase();
        let is = |suffix: &str| host == suffix || host.ends_with(&format!(".{suffix}"));
        if is("amazonaws.com") {
            Provider::Aws
        } else if is("r2.cloudflarestorage.com") {
            Provider::R2
        } else if is("backblazeb2.com") {
            Provider::B2
        } else if is("your-objectstorage.com") {
            Provider::Hetzner
        } else if is("wasabisys.com") {
            Provider::Wasabi
        } else if is("digitaloceanspaces.com") {
            Provider::DigitalOcean
        } else {
            Provider::Custom
        }
    }

    /// How `If-Match` must be spelled for this provider.
    pub fn if_match_form(self) -> IfMatchForm {
        match self {
            Provider::Hetzner => IfMatchForm::Bare,
            _ => IfMatchForm::Quoted,
        }
    }

    /// The region a host names, for the providers whose hosts carry one.
    /// `None` when the host does not say (custom servers, R2, global AWS).
    fn region_in_host(self, host: &str) -> Option<String> {
        if Provider::detect(host) != self {
            return None;
        }
        let labels: Vec<&str> = host.split('.').collect();
        let label = match self {
            // s3.<region>.amazonaws.com, s3-<region>.amazonaws.com,
            // s3.dualstack.<region>.amazonaws.com
            Provider::Aws => labels
                .iter()
                .rev()
                .nth(2)
                .filter(|label| **label != "s3" && **label != "dualstack")
                .map(|label| label.trim_start_matches("s3-"))
                .filter(|label| !label.is_empty() && *label != "s3"),
            Provider::B2 | Provider::Wasabi => labels.get(1).copied(),
            Provider::Hetzner | Provider::DigitalOcean => labels.first().copied(),
            Provider::R2 | Provider::Minio | Provider::Custom => None,
        }?;
        Some(label.to_owned())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<_> = Provider::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown provider {name:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A configuration mistake caught before the first request, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointMistake {
    /// No `http://` or `https://`.
    #[error("endpoint {0:?} has no scheme; write it as https://{0}")]
    NoScheme(String),
    /// A scheme other than http(s).
    #[error("endpoint {0:?} must start with https:// (or http:// for a local server)")]
    UnsupportedScheme(String),
    /// `https://host/` — keys would become `//manifest`.
    #[error("endpoint {0:?} ends with '/'; remove the trailing slash")]
    TrailingSlash(String),
    /// A path after the host, often the bucket.
    #[error(
        "endpoint {endpoint:?} has a path; vsync uses path-style addressing, so set the endpoint to {suggestion} and put the bucket name in `bucket`"
    )]
    HasPath {
        /// The endpoint as given.
        endpoint: String,
        /// The endpoint without the path.
        suggestion: String,
    },
    /// `https://<bucket>.s3.amazonaws.com` — a virtual-hosted URL.
    #[error(
        "endpoint {endpoint:?} is a virtual-hosted URL (it starts with the bucket name); vsync uses path-style addressing, so set the endpoint to {suggestion}"
    )]
    VirtualHosted {
        /// The endpoint as given.
        endpoint: String,
        /// The endpoint without the bucket label.
        suggestion: String,
    },
    /// The endpoint's host names a different region than configured.
    #[error(
        "region {configured:?} does not match the endpoint, which is in {expected:?}; set the region to {expected:?} (a mismatch makes every request fail with SignatureDoesNotMatch)"
    )]
    RegionMismatch {
        /// The region configured.
        configured: String,
        /// The region the endpoint names.
        expected: String,
    },
    /// R2 signs with region `auto`.
    #[error("Cloudflare R2 expects region \"auto\", not {0:?}; set the region to auto")]
    R2Region(String),
    /// An empty required setting.
    #[error("the S3 {0} is empty; set it in the profile or config")]
    Missing(&'static str),
}

/// A checked endpoint: scheme and authority, no path, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The full URL, e.g. `https://fsn1.your-objectstorage.com`.
    pub url: String,
    /// The host without port.
    pub host: String,
}

/// Checks `endpoint`, `bucket` and `region` for the mistakes of §8.2 and
/// returns the endpoint with the provider (`provider` when given, else
/// detected from the host).
pub fn check(
    endpoint: &str,
    bucket: &str,
    region: &str,
    provider: Option<Provider>,
) -> Result<(Endpoint, Provider), EndpointMistake> {
    let endpoint = endpoint.trim();
    for (value, name) in [
        (endpoint, "endpoint"),
        (bucket, "bucket"),
        (region, "region"),
    ] {
        if value.trim().is_empty() {
            return Err(EndpointMistake::Missing(name));
        }
    }
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(EndpointMistake::NoScheme(endpoint.to_owned()));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(EndpointMistake::UnsupportedScheme(endpoint.to_owned()));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.is_empty() && rest.ends_with('/') {
        return Err(EndpointMistake::TrailingSlash(endpoint.to_owned()));
    }
    if !path.is_empty() {
        return Err(EndpointMistake::HasPath {
            endpoint: endpoint.to_owned(),
            suggestion: format!("{scheme}://{authority}"),
        });
    }
    let host = host_of(authority).to_ascii_lowercase();
    let bucket_label = format!("{}.", bucket.to_ascii_lowercase());
    if let Some(parent) = host.strip_prefix(&bucket_label)
        && parent.contains('.')
    {
        return Err(EndpointMistake::VirtualHosted {
            endpoint: endpoint.to_owned(),
            suggestion: format!("{scheme}://{}", &authority[bucket_label.len()..]),
        });
    }
    let provider = provider.unwrap_or_else(|| Provider::detect(&host));
    if provider == Provider::R2 && !matches!(region, "auto" | "us-east-1") {
        return Err(EndpointMistake::R2Region(region.to_owned()));
    }
    if let Some(expected) = provider.region_in_host(&host)
        && expected != region
    {
        return Err(EndpointMistake::RegionMismatch {
            configured: region.to_owned(),
            expected,
        });
    }
    Ok((
        Endpoint {
            url: format!("{scheme}://{authority}"),
            host,
        },
        provider,
    ))
}

fn host_of(authority: &str) -> &str {
    let without_userinfo = authority.rsplit('@').next().unwrap_or(authority);
    if without_userinfo.starts_with('[') {
        // An IPv6 literal: [::1]:9000
        return without_userinfo
            .split(']')
            .next()
            .map_or(without_userinfo, |h| &h[1..]);
    }
    without_userinfo
        .split(':')
        .next()
        .unwrap_or(without_userinfo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_detected_from_their_hosts() {
        for (host, provider) in [
            ("s3.eu-west-1.amazonaws.com", Provider::Aws),
            ("acct.r2.cloudflarestorage.com", Provider::R2),
            ("s3.us-west-004.backblazeb2.com", Provider::B2),
            ("fsn1.your-objectstorage.com", Provider::Hetzner),
            ("s3.eu-central-2.wasabisys.com", Provider::Wasabi),
            ("ams3.digitaloceanspaces.com", Provider::DigitalOcean),
            ("127.0.0.1", Provider::Custom),
            ("notamazonaws.com", Provider::Custom),
        ] {
            assert_eq!(Provider::detect(host), provider, "{host}");
        }
        assert_eq!("Hetzner".parse::<Provider>().unwrap(), Provider::Hetzner);
        assert!("s4".parse::<Provider>().unwrap_err().contains("hetzner"));
    }

    #[test]
    fn only_hetzner_sends_a_bare_if_match() {
        for provider in Provider::ALL {
            let expected = if provider == Provider::Hetzner {
                IfMatchForm::Bare
            } else {
                IfMatchForm::Quoted
            };
            assert_eq!(provider.if_match_form(), expected, "{provider}");
        }
    }

    #[test]
    fn good_endpoints_pass_with_their_provider() {
        let (endpoint, provider) =
            check("https://fsn1.your-objectstorage.com", "acme", "fsn1", None).unwrap();
        assert_eq!(endpoint.url, "https://fsn1.your-objectstorage.com");
        assert_eq!(provider, Provider::Hetzner);
        assert_eq!(
            check(
                "http://127.0.0.1:9000",
                "b",
                "us-east-1",
                Some(Provider::Minio)
            )
            .unwrap()
            .1,
            Provider::Minio
        );
        for (endpoint, region) in [
            ("https://s3.amazonaws.com", "eu-west-1"),
            ("https://s3.eu-west-1.amazonaws.com", "eu-west-1"),
            ("https://s3-eu-west-1.amazonaws.com", "eu-west-1"),
            ("https://acct.r2.cloudflarestorage.com", "auto"),
            ("https://s3.us-west-004.backblazeb2.com", "us-west-004"),
            ("https://ams3.digitaloceanspaces.com", "ams3"),
            ("https://[::1]:9000", "us-east-1"),
        ] {
            check(endpoint, "bucket", region, None).unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
    }

    #[test]
    fn each_endpoint_mistake_names_its_fix() {
        let cases = [
            (
                "s3.amazonaws.com",
                "us-east-1",
                "write it as https://s3.amazonaws.com",
            ),
            ("ftp://host", "us-east-1", "must start with https://"),
            (
                "https://minio.local:9000/",
                "us-east-1",
                "remove the trailing slash",
            ),
            (
                "https://minio.local:9000/acme",
                "us-east-1",
                "set the endpoint to https://minio.local:9000",
            ),
            (
                "https://acme.s3.eu-west-1.amazonaws.com",
                "eu-west-1",
                "set the endpoint to https://s3.eu-west-1.amazonaws.com",
            ),
            (
                "https://s3.us-west-004.backblazeb2.com",
                "us-east-1",
                "set the region to \"us-west-004\"",
            ),
            (
                "https://fsn1.your-objectstorage.com",
                "nbg1",
                "set the region to \"fsn1\"",
            ),
            (
                "https://acct.r2.cloudflarestorage.com",
                "eu",
                "set the region to auto",
            ),
            ("", "us-east-1", "endpoint is empty"),
        ];
        for (endpoint, region, fix) in cases {
            let message = check(endpoint, "acme", region, None)
                .unwrap_err()
                .to_string();
            assert!(message.contains(fix), "{endpoint}: {message}");
        }
    }
}
