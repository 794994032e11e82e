//! Who may call which route: every route is registered in a [`RouteTable`] together with its
//! [`Access`], and [`authorize`] enforces it. A route cannot exist without an access level, and
//! the tests walk the same table, so no route is missed.
//!
//! - [`Access::Open`] (`/healthz`) needs nothing.
//! - [`Access::Metrics`] (`/metrics`) is open when `api.metricsWithoutToken` is set, otherwise
//!   like [`Access::Read`].
//! - Everything else needs `Authorization: Bearer <token>` (401 without one, or with one that is
//!   malformed, unknown or revoked) and a role that has the access (403 otherwise):
//!   `read-only` reads, `operator` also operates, `admin` does everything.
//! - A token with a scope reaches only routes about one service whose name starts with the
//!   scope (`/v1/services/{name}...`, and `/v1/tasks/{id}...` of such a service's tasks) and
//!   the routes that take a spec (`POST /v1/services`, `POST /v1/plan`), whose handlers check
//!   the spec's name; any other route is a 403.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use super::errors::HttpError;
use super::routes::ApiState;
use super::tokens::{self, Caller, Role};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone who reaches the API.
    Open,
    /// `/metrics`: open when configured, otherwise a token with the read access.
    Metrics,
    /// Any valid token.
    Read,
    /// `operator` or `admin`.
    Operate,
    /// `admin` only.
    Admin,
}

impl Access {
    /// The least role with this access (`None`: no token needed).
    pub fn least_role(self, metrics_open: bool) -> Option<Role> {
        match self {
            Access::Open => None,
            Access::Metrics if metrics_open => None,
            Access::Metrics | Access::Read => Some(Role::ReadOnly),
            Access::Operate => Some(Role::Operator),
            Access::Admin => Some(Role::Admin),
        }
    }
}

/// One route: method, path template (axum syntax) and access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Routes under construction, each with its access. [`RouteTable::finish`] gives the router
/// with [`authorize`] applied to every route, and the table.
pub struct RouteTable {
    router: Router<ApiState>,
    entries: Vec<RouteEntry>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            router: Router::new(),
            entries: Vec::new(),
        }
    }
}

impl RouteTable {
    /// Adds `handler` for `method` on `path`, needing `access`. Panics on a method axum cannot
    /// route (a programming error, caught by every test that builds the router).
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.router = self.router.route(path, on(filter, handler));
        self.entries.push(RouteEntry {
            method,
            path,
            access,
        });
        self
    }

    /// Adds every route of `other`.
    pub fn merge(mut self, other: RouteTable) -> Self {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    /// The entries so far.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// The router with [`authorize`] on every route, and the table.
    pub fn finish(self, state: &ApiState) -> (Router<ApiState>, Arc<Vec<RouteEntry>>) {
        let entries = Arc::new(self.entries);
        let lookup: Arc<HashMap<(Method, &'static str), Access>> = Arc::new(
            entries
                .iter()
                .map(|e| ((e.method.clone(), e.path), e.access))
                .collect(),
        );
        let guard = AuthContext {
            state: state.clone(),
            lookup,
        };
        let router = self
            .router
            .route_layer(axum::middleware::from_fn_with_state(guard, authorize));
        (router, entries)
    }
}

/// What [`authorize`] needs: the store (tokens), settings, and the access of each route.
#[derive(Clone)]
pub struct AuthContext {
    state: ApiState,
    lookup: Arc<HashMap<(Method, &'static str), Access>>,
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(message: &str) -> Response {
    let mut response = HttpError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"orion\""),
    );
    response
}

/// The value of segment `{param}` of template `template` in `path`.
fn path_param<'a>(template: &str, path: &'a str, param: &str) -> Option<&'a str> {
    let index = template.split('/').position(|s| s == param)?;
    path.split('/').nth(index)
}

/// Routes a scoped token may call without naming a service in the path: their handlers check
/// the service the body names.
const SCOPED_BODY_ROUTES: [(Method, &str); 2] =
    [(Method::POST, "/v1/services"), (Method::POST, "/v1/plan")];

/// The route layer: checks the caller's token and role against the route's access, and the
/// service scope; puts the [`Caller`] in the request's extensions for the handlers.
pub async fn authorize(
    State(ctx): State<AuthContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    // A route missing from the table (impossible through RouteTable) needs admin: fail closed.
    let access = ctx
        .lookup
        .get(&(method.clone(), template.as_str()))
        .copied()
        .unwrap_or(Access::Admin);
    let Some(least) = access.least_role(ctx.state.settings.metrics_without_token) else {
        return next.run(request).await;
    };
    let Some(token) = bearer(&request) else {
        return unauthorized(
            "this route needs a token: send `Authorization: Bearer <token>` (the CLI reads \
             ORION_TOKEN or a credentials file; see docs/security.md)",
        );
    };
    let caller = match tokens::verify(ctx.state.local_store.as_ref(), token).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return unauthorized("the token is malformed, unknown or revoked"),
        Err(e) => return HttpError::from(e).into_response(),
    };
    if caller.role < least {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{method} {template} needs the {} role or above; this token has {}",
                least.name(),
                caller.role.name()
            ),
        )
        .into_response();
    }
    if let Some(scope) = &caller.scope {
        let path = request.uri().path();
        let service = if template.starts_with("/v1/services/{name}") {
            path_param(&template, path, "{name}").map(str::to_owned)
        } else if template.starts_with("/v1/tasks/{id}") {
            // A task is reached through its service (an unknown task: out of scope).
            let id = path_param(&template, path, "{id}").unwrap_or_default();
            match ctx.state.store.get_task(id).await {
                Ok(task) => Some(task.map(|t| t.service.to_string()).unwrap_or_default()),
                Err(e) => return HttpError::from(e).into_response(),
            }
        } else {
            None
        };
        let allowed = match &service {
            Some(name) => !name.is_empty() && name.starts_with(scope.as_str()),
            None => SCOPED_BODY_ROUTES
                .iter()
                .any(|(m, p)| *m == method && *p == template),
        };
        if !allowed {
            return HttpError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this token is scoped to services named {scope}*; {method} {} is outside it",
                    request.uri().path()
                ),
            )
            .into_response();
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Refuses a spec that `caller` may not write: a service outside the token's scope (403), host
/// access by a role other than admin (403), host access the node's `hostAccess` does not allow
/// (422, from the library's check).
pub fn check_spec_for(
    state: &ApiState,
    caller: &Caller,
    spec: &orion_core::model::ServiceSpec,
) -> Result<(), HttpError> {
    if !caller.reaches_service(&spec.name) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!(
                "name: {:?} is outside this token's scope (services named {}*)",
                spec.name,
                caller.scope.as_deref().unwrap_or_default()
            ),
        ));
    }
    let asked = spec.host_access();
    if !asked.is_empty() && caller.role != Role::Admin {
        let fields: Vec<String> = asked
            .iter()
            .map(|a| format!("{} ({})", a.path, a.feature.name()))
            .collect();
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!(
                "host access needs the admin role (this token has {}): {}",
                caller.role.name(),
                fields.join(", ")
            ),
        ));
    }
    spec.check_host_access(&state.settings.host_access)
        .map_err(|e| HttpError::from(orion_core::Error::from(e)))
}
