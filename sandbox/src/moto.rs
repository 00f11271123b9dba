//! moto's server, started on a free loopback port for the tests that need real AWS wire protocols
//! (Secrets Manager, SQS, DynamoDB, EventBridge), and stopped when dropped.
//!
//! The server comes from the project's virtualenv (`make venv`, `scripts/bootstrap-venv.sh`), or
//! from `MOTO_SERVER` when set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

pub struct Moto {
    child: Child,
    endpoint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server not found at {0}; run `make venv` (scripts/bootstrap-venv.sh) or set MOTO_SERVER"
    )]
    NotInstalled(PathBuf),
    #[error("moto_server could not start: {0}")]
    Start(String),
}

fn moto_binary() -> PathBuf {
    match std::env::var_os("MOTO_SERVER") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(".venv")
            .join("bin")
            .join("moto_server"),
    }
}

fn free_port() -> Result<u16, MotoError> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| MotoError::Start(e.to_string()))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| MotoError::Start(e.to_string()))
}

impl Moto {
    /// Starts a fresh server on a free port and waits until it answers.
    pub async fn start() -> Result<Moto, MotoError> {
        Moto::start_on(None).await
    }

    /// Starts a fresh server on `port` (a free one when `None`) and waits until it answers. A
    /// chosen port is tried once: a taken one is an error naming it.
    pub async fn start_on(port: Option<u16>) -> Result<Moto, MotoError> {
        let binary = moto_binary();
        if !binary.exists() {
            return Err(MotoError::NotInstalled(binary));
        }
        if let Some(port) = port {
            TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| MotoError::Start(format!("port {port} cannot be used: {e}")))?;
        }
        let mut last_error = String::new();
        for _ in 0..if port.is_some() { 1 } else { 3 } {
            let port = match port {
                Some(p) => p,
                None => free_port()?,
            };
            let child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| MotoError::Start(e.to_string()))?;
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready().await {
                Ok(()) => return Ok(moto),
                Err(e) => last_error = e,
            }
        }
        Err(MotoError::Start(last_error))
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/moto-api/", self.endpoint);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited with {status}"));
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("moto_server did not answer within 30 s".into());
            }
            // Waiting for a child process to start listening: there is no event to await.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An AWS SDK configuration pointed at this server with static test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
