//! Stopping the long-running commands (`sandbox serve`, `mirror run`) the way process
//! managers do.

/// Completes on SIGTERM (systemd, Kubernetes, `docker stop`) or SIGINT (Ctrl-C); on other
/// platforms, on Ctrl-C. Logs which one at info.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: stopping"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("SIGINT received: stopping");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received: stopping");
    }
}
