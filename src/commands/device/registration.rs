//! The IAM steps of registering a virtual MFA device, and the rule that shapes them: a device
//! that was created but not enabled must not outlive the run. IAM keeps it, its name stays
//! taken, and the next `device add` would fail with "already exists". So from
//! CreateVirtualMFADevice until EnableMFADevice succeeds, every way out deletes it: an error,
//! codes refused too often, the terminal gone (EOF, SIGHUP) and Ctrl-C or SIGTERM at a
//! prompt. Signals go through the terminal's one watcher, which puts the terminal back and
//! runs the cleanup armed here: it waits for an IAM call in flight to finish, deletes the
//! device, and the run then ends by the signal it got (Ctrl-C: status 130).
//!
//! No terminal and no file here: `add` asks for the codes and writes `mfa_serial`.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Runtime;

use crate::aws::failure::{AwsFailure, FailureKind};
use crate::aws::iam::{Iam, NewDevice, User};
use crate::aws::new_runtime;
use crate::terminal::{say, tty};

/// A device created for a user and not enabled yet; deleted again on every way out until
/// [`Registration::keep`].
pub(super) struct Registration<'a> {
    rt: &'a Runtime,
    iam: &'a Iam,
    cleanup: Cleanup,
    pub(super) device: NewDevice,
}

impl<'a> Registration<'a> {
    /// CreateVirtualMFADevice, with the cleanup armed before the call: a signal while it is
    /// in flight waits for its outcome.
    pub(super) fn create(
        rt: &'a Runtime,
        iam: &'a Iam,
        name: &str,
    ) -> Result<Registration<'a>, AwsFailure> {
        let cleanup = Cleanup::arm(iam.clone());
        let device = {
            let mut phase = cleanup.phase();
            let device = rt.block_on(iam.create_device(name))?;
            *phase = Phase::Created(device.serial.clone());
            device
        };
        Ok(Registration {
            rt,
            iam,
            cleanup,
            device,
        })
    }

    /// EnableMFADevice with two consecutive codes: `Ok(false)` when IAM refused the codes
    /// (the device stays created, to be tried again or abandoned).
    pub(super) fn enable(&self, user: &User, first: &str, second: &str) -> anyhow::Result<bool> {
        let mut phase = self.cleanup.phase();
        match self.rt.block_on(
            self.iam
                .enable(&user.name, &self.device.serial, first, second),
        ) {
            Ok(()) => {
                *phase = Phase::Settled;
                Ok(true)
            }
            Err(e) if e.kind == FailureKind::InvalidCode => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the device again after a failure: what happened, for the end of the message.
    pub(super) fn abandon(self) -> String {
        // Held while deleting: a signal meanwhile finds nothing left to undo.
        let mut phase = self.cleanup.phase();
        *phase = Phase::Settled;
        delete_again(self.rt, self.iam, &self.device.serial)
    }

    /// Enabled: from here on the device is the user's, whatever happens to this run.
    pub(super) fn keep(self) -> NewDevice {
        self.device
    }
}

/// Where registration stands, for the signal watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Nothing created yet (or the call that creates is in flight: the lock is held).
    Before,
    /// This device exists and is not enabled: it must be deleted on the way out.
    Created(String),
    /// Enabled (the device stays; the run finishes writing the config), or already deleted
    /// by the run itself: the run ends on its own.
    Settled,
}

/// The phase, shared with the cleanup a signal runs, for as long as registration runs.
struct Cleanup {
    phase: Arc<Mutex<Phase>>,
    _registered: tty::CleanupGuard,
}

impl Cleanup {
    /// From now on SIGINT, SIGTERM and SIGHUP first undo what registration did so far.
    fn arm(iam: Iam) -> Cleanup {
        let phase = Arc::new(Mutex::new(Phase::Before));
        let watched = Arc::clone(&phase);
        let registered = tty::on_signal(move |why| {
            // Waits for an IAM call in flight: its outcome decides what to undo.
            let phase = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match phase {
                Phase::Before => {
                    say(&format!("{why}; no MFA device was created"));
                    true
                }
                Phase::Created(serial) => {
                    let outcome = match new_runtime() {
                        Ok(rt) => delete_again(&rt, &iam, &serial),
                        Err(e) => could_not_delete(&serial, &e),
                    };
                    say(&format!("{why} before the device was enabled; {outcome}"));
                    true
                }
                Phase::Settled => false,
            }
        });
        Cleanup {
            phase,
            _registered: registered,
        }
    }

    /// Held across an IAM call, so a signal waits for its outcome.
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Deletes a device that was created and not enabled: what happened, for the end of a message.
fn delete_again(rt: &Runtime, iam: &Iam, serial: &str) -> String {
    match rt.block_on(iam.delete(serial)) {
        Ok(()) => format!("device {serial} was deleted again, nothing is left behind"),
        Err(e) => could_not_delete(serial, &e),
    }
}

fn could_not_delete(serial: &str, why: &dyn std::fmt::Display) -> String {
    format!(
        "and device {serial} could not be deleted ({why}): delete it with `aws iam delete-virtual-mfa-device --serial-number {serial}`"
    )
}
