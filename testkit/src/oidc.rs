//! A real OpenID Connect provider for sign-in tests: `tests/oidc/provider.mjs` (the npm
//! package `oidc-provider`) started with node on a free loopback port, and a person's side
//! of signing in done with plain HTTP: the provider's forms are read and posted back, as a
//! browser would, with a cookie jar.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the provider may take to start (node loads the package and makes a key).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The static client the provider script registers.
pub const CLIENT_ID: &str = "mesh-test";
/// Its secret.
pub const CLIENT_SECRET: &str = "mesh-test-secret";

/// The provider script, from the workspace root.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("oidc")
        .join("provider.mjs")
}

/// A running provider, killed when dropped.
pub struct OidcProvider {
    child: Child,
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts the provider. Fails, saying what to run, when its npm packages are missing.
    pub async fn start() -> anyhow::Result<OidcProvider> {
        let script = script();
        let modules = script.with_file_name("node_modules").join("oidc-provider");
        if !modules.exists() {
            bail!("the test OpenID Connect provider is not installed: run `npm ci` in tests/oidc (scripts/test does)");
        }
        let mut child = Command::new("node")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start node (the test provider needs it)")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .context("the provider did not start in time")??
            .context("the provider exited before listening")?;
        let issuer = line
            .strip_prefix("oidc-provider listening on ")
            .with_context(|| format!("unexpected first line from the provider: {line}"))?
            .to_string();
        // Keep draining stdout so the provider never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(OidcProvider {
            child,
            issuer,
            http: reqwest::Client::new(),
        })
    }

    /// The `mesh-server` flags that make it a client of this provider.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--oidc-issuer".into(),
            self.issuer.clone(),
            "--oidc-client-id".into(),
            CLIENT_ID.into(),
            "--oidc-client-secret".into(),
            CLIENT_SECRET.into(),
        ]
    }

    /// Makes the token endpoint spoil the ID tokens it sends (`forged`, `expired`,
    /// `wrong_audience`, `wrong_issuer`, `wrong_nonce`, `alg_none`), or stop (`None`).
    pub async fn spoil(&self, mode: Option<&str>) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/__mesh_test/mode", self.issuer))
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("the provider refused mode {mode:?}: {}", r.text().await?);
        }
        Ok(())
    }

    /// The provider process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// A browser: a cookie jar, redirects followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a reqwest client")
}

/// The first form of a page: its action (resolved against `base`) and its hidden fields.
pub fn form_of(html: &str, base: &reqwest::Url) -> anyhow::Result<(reqwest::Url, Vec<(String, String)>)> {
    let start = html.find("<form").context("the page has no form")?;
    let tag = &html[start..start + html[start..].find('>').context("an unclosed form tag")?];
    let action = attr(tag, "action").unwrap_or_default();
    let action = base.join(&unescape(&action))?;
    let end = html[start..].find("</form>").map_or(html.len(), |e| start + e);
    let mut fields = Vec::new();
    let mut rest = &html[start..end];
    while let Some(at) = rest.find("<input") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        if attr(tag, "type").as_deref() == Some("hidden") {
            if let Some(name) = attr(tag, "name") {
                fields.push((name, unescape(&attr(tag, "value").unwrap_or_default())));
            }
        }
        rest = &rest[tag_end..];
    }
    Ok((action, fields))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].to_string())
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x3D;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Posts the first form of `page` (its hidden fields plus `extra`) and returns the page
/// the browser ends on.
pub async fn submit(
    browser: &reqwest::Client,
    page: reqwest::Response,
    extra: &[(&str, &str)],
) -> anyhow::Result<reqwest::Response> {
    let base = page.url().clone();
    let html = page.text().await?;
    let (action, mut fields) = form_of(&html, &base)?;
    // What the person types replaces a hidden field of the same name (a form field sent
    // twice reads as a list to the provider).
    fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(browser.post(action).form(&fields).send().await?)
}

/// Signs in at the provider's development login form (any password) as `login`, from a page
/// that is that form (or leads to it by a form to post first, as the device pages do).
/// Returns the page the browser ends on.
pub async fn log_in(
    browser: &reqwest::Client,
    mut page: reqwest::Response,
    login: &str,
) -> anyhow::Result<reqwest::Response> {
    // Device pages first post a code and a confirmation; then comes the login form.
    for _ in 0..4 {
        if page.url().path().starts_with("/interaction/") {
            return submit(
                browser,
                page,
                &[("prompt", "login"), ("login", login), ("password", "any")],
            )
            .await;
        }
        if !page.status().is_success() {
            bail!("the provider answered {} at {}", page.status(), page.url());
        }
        page = submit(browser, page, &[]).await?;
    }
    bail!("never reached the provider's login form (at {})", page.url())
}

/// A browser signed in to the mesh server at `server` as `login` (its session cookie in the
/// jar), by `/auth/login`. Returns the browser and the final response (the page after
/// sign-in, or the server's refusal).
pub async fn browser_sign_in(server: &str, login: &str) -> anyhow::Result<(reqwest::Client, reqwest::Response)> {
    let b = browser();
    let page = b.get(format!("{server}/auth/login?return_to=/auth/me")).send().await?;
    let done = log_in(&b, page, login).await?;
    Ok((b, done))
}
