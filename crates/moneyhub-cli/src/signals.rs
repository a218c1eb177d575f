//! Stopping the long-running commands (`sandbox serve`, `mirror run`) the way process
//! managers do.

/// Completes on SIGTERM (systemd, Kubernetes, `docker stop`) or SIGINT (Ctrl-C); on other
/// platforms, on Ctrl-C. Logs which one at info.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// server calls it before it announces that it is listening, so a signal sent the moment the
/// announcement is read (as process managers and tests do) is always a graceful stop and
/// never the default action, which would kill the process in the middle of its work. Call
/// it inside the runtime.
#[cfg_attr(not(any(feature = "sandbox", feature = "mirror")), allow(dead_code))]
pub fn shutdown() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers =
            signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
                        _ = int.recv() => tracing::info!("SIGINT received: stopping"),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
                    let _ = tokio::signal::ctrl_c().await;
                    tracing::info!("SIGINT received: stopping");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received: stopping");
        }
    }
}
