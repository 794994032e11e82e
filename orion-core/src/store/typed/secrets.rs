//! Sealed secrets in the typed store: create (never overwrite), read, list, delete.

use super::{ClusterStore, check_segment, decode, encode, keys};
use crate::error::{Error, Result};
use crate::secrets::SealedSecret;
use crate::store::{Compare, Op, Revision, Store, Txn};

impl<S: Store> ClusterStore<S> {
    /// Stores `secret` under its name if no secret of that name exists ([`Error::Conflict`]
    /// otherwise: a secret is deleted and created again, never overwritten in place).
    pub async fn create_secret(&self, secret: &SealedSecret) -> Result<Revision> {
        check_segment("name", &secret.name)?;
        let key = keys::secret(&secret.name);
        let txn = Txn::new()
            .when(Compare::Missing(key.clone()))
            .and_then(Op::Put(key.clone(), encode(&key, secret)?));
        let done = self.store.txn(txn).await?;
        if done.succeeded {
            Ok(done.revision)
        } else {
            Err(Error::Conflict(format!(
                "secret {:?} already exists; remove it first to replace its value",
                secret.name
            )))
        }
    }

    /// The sealed secret `name`, if it exists.
    pub async fn get_secret(&self, name: &str) -> Result<Option<SealedSecret>> {
        check_segment("name", name)?;
        match self.store.get(&keys::secret(name)).await? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    /// Every sealed secret, in name order.
    pub async fn list_secrets(&self) -> Result<Vec<SealedSecret>> {
        self.list_typed(keys::SECRETS).await
    }

    /// Removes secret `name`; false when it did not exist.
    pub async fn delete_secret(&self, name: &str) -> Result<bool> {
        check_segment("name", name)?;
        Ok(self.store.delete(&keys::secret(name)).await?.is_some())
    }
}
