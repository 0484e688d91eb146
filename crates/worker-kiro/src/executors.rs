//! The executor kinds built into the worker, chosen by a registry record's `kind`.

use std::sync::Arc;

use tlao_domain::{Executor, ExecutorConfig, ExecutorDescriptor};

use crate::acp::AcpExecutor;
use crate::command::CommandExecutor;
use crate::confine::Confinement;
use crate::kiro::KiroExecutor;

/// The executor a registry record describes, running its agent in `confinement` (its
/// run's sandbox and environment) when given.
pub fn executor_for(
    descriptor: &ExecutorDescriptor,
    confinement: Option<Arc<Confinement>>,
) -> Box<dyn Executor> {
    match (&descriptor.config, confinement) {
        (ExecutorConfig::Kiro(config), None) => Box::new(KiroExecutor::new(config.clone())),
        (ExecutorConfig::Kiro(config), Some(c)) => {
            Box::new(KiroExecutor::new(config.clone()).confined(c))
        }
        (ExecutorConfig::Command(config), None) => Box::new(CommandExecutor::new(config.clone())),
        (ExecutorConfig::Command(config), Some(c)) => {
            Box::new(CommandExecutor::new(config.clone()).confined(c))
        }
        (ExecutorConfig::Acp(config), None) => Box::new(AcpExecutor::new(config.clone())),
        (ExecutorConfig::Acp(config), Some(c)) => {
            Box::new(AcpExecutor::new(config.clone()).confined(c))
        }
    }
}
