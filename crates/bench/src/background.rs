//! A task that runs on a thread and a runtime of its own, until dropped. The load
//! generator's runtime only runs inside `block_on`, between the phases of a run it
//! stands still; what a server depends on at every moment (the counting proxy in front
//! of its database, the webhook receiver it delivers to) must not stand still with it.
//! The thread inherits the load generator's CPU.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::Error;

pub struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs the future that `task` makes until it ends or this is dropped; the tasks it
    /// spawned end with it.
    pub fn spawn<F, Fut>(name: &str, task: F) -> Result<Self, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = task() => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
