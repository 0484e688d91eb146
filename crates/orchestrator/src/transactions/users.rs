//! Creating a user with its first API key, and the first administrator, once per table.

use tlao_domain::{ApiKeyRecord, User, keys};
use tlao_ports::{AttrValue, Condition, Item, WriteOp};

use crate::attrs;
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;

/// Why [`bootstrap_admin`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapAdminError {
    /// An administrator was bootstrapped already (perhaps by another server starting
    /// at the same time).
    #[error("an administrator was already bootstrapped")]
    AlreadyBootstrapped,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a new `user` and the record of its API key.
pub async fn create_user(store: &Store, user: &User, key: &ApiKeyRecord) -> Result<(), StoreError> {
    let mut tx = Transaction::new();
    tx.insert(user)?.insert(key)?;
    tx.commit(store).await
}

/// Stores the first administrator `user` and its API key with the bootstrap marker that
/// names it, unless the marker exists.
pub async fn bootstrap_admin(
    store: &Store,
    user: &User,
    key: &ApiKeyRecord,
) -> Result<(), BootstrapAdminError> {
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Put {
            item: Item::new(keys::bootstrap())
                .with(attrs::USER_ID, AttrValue::S(user.user_id.to_string())),
            condition: Some(Condition::NotExists),
        },
        BootstrapAdminError::AlreadyBootstrapped,
    )
    .insert(user)?
    .insert(key)?;
    tx.commit(store).await
}

#[cfg(test)]
mod tests {
    use tlao_domain::{Guardrails, Name, UserId};

    use super::*;
    use crate::transactions::testing::World;

    fn admin(world: &World) -> (User, ApiKeyRecord) {
        let core = world.core();
        let user = User {
            user_id: UserId::new(core.new_ulid()),
            name: Name::try_from("admin".to_owned()).expect("a name"),
            admin: true,
            created_at: core.now(),
        };
        let key = ApiKeyRecord {
            key_hash: format!("hash of {}", user.user_id),
            user_id: user.user_id.clone(),
            created_at: core.now(),
        };
        (user, key)
    }

    #[tokio::test]
    async fn bootstrapping_a_second_administrator_is_refused_as_already_bootstrapped() {
        let world = World::new(Guardrails::default());
        let store = &world.core().store;
        let (user, key) = admin(&world);
        bootstrap_admin(store, &user, &key)
            .await
            .expect("the first administrator is bootstrapped");

        let (user, key) = admin(&world);
        let refused = bootstrap_admin(store, &user, &key).await;

        assert!(
            matches!(refused, Err(BootstrapAdminError::AlreadyBootstrapped)),
            "{refused:?}"
        );
    }
}
