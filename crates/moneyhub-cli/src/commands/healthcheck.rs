//! `moneyhub healthcheck URL [--timeout SECS]`: one GET, for a container's `HEALTHCHECK`
//! (the runtime image has no curl). Exit 0 when the answer is 2xx, 1 otherwise (Docker reads
//! any other code as unhealthy too); one line on stderr says why.

use crate::cli::HealthcheckArgs;
use crate::exit::{CmdResult, Failure};
use crate::output;

/// Runs `moneyhub healthcheck`.
pub async fn run(args: HealthcheckArgs) -> CmdResult {
    let url = url::Url::parse(&args.url).map_err(|e| Failure::usage(format!("{:?}: {e}", args.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::usage(format!("{:?}: must be an http(s) URL", args.url)));
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(args.timeout))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::internal(format!("could not start an HTTP client: {e}")))?;
    let answer = http.get(url.clone()).send().await;
    match answer {
        Ok(r) if r.status().is_success() => {
            output::line(&format!("{} {}", r.status().as_u16(), url));
            Ok(())
        }
        Ok(r) => Err(Failure::internal(format!("{url} answered {}", r.status()))),
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = s.to_string();
                source = s.source();
            }
            Err(Failure::internal(format!("{url} did not answer: {why}")))
        }
    }
}
