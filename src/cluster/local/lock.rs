//! Serialises `up` and `down`: an exclusive flock on the state root directory itself,
//! so no lock file is left behind and the lock goes away with the process.

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::cluster::{Error, IoContext};
use crate::ui::Ui;

pub struct StateLock {
    _flock: Flock<File>,
}

pub async fn exclusive(root: &Path, ui: &Ui) -> Result<StateLock, Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .context(|| format!("creating {}", root.display()))?;
    let open = || File::open(root).context(|| format!("opening {}", root.display()));
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => return Ok(StateLock { _flock: flock }),
        Err((_, Errno::EWOULDBLOCK)) => {}
        Err((_, errno)) => {
            return Err(std::io::Error::from(errno))
                .context(|| format!("locking {}", root.display()));
        }
    }
    let step = ui.step(format!(
        "waiting for another kubelab command using {}",
        root.display()
    ));
    let file = open()?;
    let flock = tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive))
        .await
        .expect("lock task does not panic")
        .map_err(|(_, errno)| std::io::Error::from(errno))
        .context(|| format!("locking {}", root.display()))?;
    step.done("the other kubelab command finished");
    Ok(StateLock { _flock: flock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_locker_waits_for_the_first() {
        let root = tempfile::tempdir().unwrap();
        let ui = Ui::new(true);
        let first = exclusive(root.path(), &ui).await.unwrap();
        let path = root.path().to_path_buf();
        let second =
            tokio::spawn(async move { exclusive(&path, &Ui::new(true)).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished(), "the second lock must wait");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("second lock acquired after the first was dropped")
            .unwrap()
            .unwrap();
    }
}
