//! `rbuild search`: the repositories a registry lists at `GET /v2/_catalog` (the
//! distribution spec's optional listing; docker-registry, Harbor and zot serve it), with
//! the `Link` header's pages followed. Docker Hub has no catalog (its search is a
//! separate, non-OCI API), so it is refused before anything is sent.

use crate::client::{Body, Client};
use crate::error::{RegistryError, Result};

/// Entries asked for per page.
const PAGE: usize = 100;
/// Pages followed at most (a registry that keeps linking is cut off).
const MAX_PAGES: usize = 1000;

/// The `next` target of a `Link: </v2/_catalog?last=x&n=100>; rel="next"` header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find(|l| l.contains("rel=\"next\"") || l.contains("rel=next")).and_then(|l| {
        let start = l.find('<')? + 1;
        let end = l[start..].find('>')? + start;
        Some(l[start..end].to_string())
    })
}

/// The repositories of the registry `client` speaks to, in the registry's order.
pub fn catalog(client: &Client) -> Result<Vec<String>> {
    if client.registry() == "docker.io" {
        return Err(RegistryError::Unsupported(
            "Docker Hub has no catalog: rbuild searches registries that serve /v2/_catalog \
             (name one: rbuild search HOST[:PORT]/TERM)"
                .into(),
        ));
    }
    let scopes = ["registry:catalog:*".to_string()];
    let mut url = client.url(&format!("_catalog?n={PAGE}"));
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut resp = client.send("GET", &url, &scopes, &[], Body::Empty)?;
        match resp.status().as_u16() {
            200 => {}
            404 | 405 => {
                return Err(RegistryError::Unsupported(format!(
                    "{} does not list its repositories (no /v2/_catalog)",
                    client.registry()
                )))
            }
            s => {
                return Err(RegistryError::Http {
                    what: format!("GET {}", url.split('?').next().unwrap_or(&url)),
                    status: s,
                    detail: crate::client::error_detail(&mut resp),
                })
            }
        }
        let link = resp.headers().get("link").and_then(|v| v.to_str().ok()).and_then(next_link);
        let body = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| RegistryError::transport("reading the catalog", e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::bad("the catalog", e.to_string()))?;
        let repos = v.get("repositories").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        out.extend(repos.iter().filter_map(|r| r.as_str().map(String::from)));
        match link {
            Some(l) if !repos.is_empty() => url = client.absolute(&l),
            _ => return Ok(out),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_docker_hub() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=100>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=100")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        let c = Client::new(
            "docker.io",
            &crate::client::ClientOptions {
                config_path: Some("/nonexistent/config.json".into()),
                ..Default::default()
            },
        )
        .unwrap();
        // Refused without a request (this test has no network).
        assert!(matches!(catalog(&c), Err(RegistryError::Unsupported(m)) if m.contains("Docker Hub")));
    }
}
