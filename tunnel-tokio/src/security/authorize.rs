//! The authorization hook of a Modbus/TCP Security server: given who the
//! client is (its certified role) and the request, allow or deny, before
//! the request reaches the data model.

use std::net::SocketAddr;

use outpost_modbus_core::access::{Denial, Policy};
use outpost_modbus_core::{Request, UnitId};

use crate::binding::{Principal, Role};

/// A client of a Modbus/TCP Security listener, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The role from the certificate's role extension.
    pub role: Role,
    /// The certificate's subject.
    pub subject: Principal,
    /// Where the client connected from.
    pub peer: SocketAddr,
}

/// Decides whether a client may make a request. A denial is answered with
/// exception 01 (Illegal Function), as Modbus/TCP Security requires, and
/// logged as a `request.denied` audit event naming the rule.
///
/// A [`Policy`] authorizes by the client's role (deny by default: a role
/// the policy does not list may do nothing); a closure may decide anything.
///
/// ```
/// use outpost_modbus_core::access::Denial;
/// use outpost_modbus_core::{FunctionClass, Request, UnitId};
/// use outpost_tunnel_tokio::security::{Authorize, ClientIdentity};
///
/// // Readers read; nobody else does anything.
/// let readers_only = |client: &ClientIdentity, _unit: UnitId, request: &Request<'_>| {
///     if client.role.as_str() == "viewer" && !request.is_write() {
///         Ok(())
///     } else {
///         Err(Denial::Function { function: request.function(), class: FunctionClass::Write })
///     }
/// };
/// fn takes(_: impl Authorize) {}
/// takes(readers_only);
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// `Ok` to serve the request, or the rule it breaks.
    fn authorize(&self, client: &ClientIdentity, unit: UnitId, request: &Request<'_>) -> Result<(), Denial>;
}

impl Authorize for Policy {
    fn authorize(&self, client: &ClientIdentity, unit: UnitId, request: &Request<'_>) -> Result<(), Denial> {
        self.check(client.role.as_str(), unit, request)
    }
}

impl<F> Authorize for F
where
    F: Fn(&ClientIdentity, UnitId, &Request<'_>) -> Result<(), Denial> + Send + Sync + 'static,
{
    fn authorize(&self, client: &ClientIdentity, unit: UnitId, request: &Request<'_>) -> Result<(), Denial> {
        self(client, unit, request)
    }
}
