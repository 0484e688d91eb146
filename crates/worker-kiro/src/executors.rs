//! The executor kinds built into the worker, chosen by a registry record's `kind`.

use tlao_domain::{Executor, ExecutorConfig, ExecutorDescriptor};

use crate::command::CommandExecutor;
use crate::kiro::KiroExecutor;

/// The executor a registry record describes.
pub fn executor_for(descriptor: &ExecutorDescriptor) -> Box<dyn Executor> {
    match &descriptor.config {
        ExecutorConfig::Kiro(config) => Box::new(KiroExecutor::new(config.clone())),
        ExecutorConfig::Command(config) => Box::new(CommandExecutor::new(config.clone())),
    }
}
