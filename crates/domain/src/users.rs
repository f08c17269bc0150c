//! Use cases about accounts: registration, login, authentication of a request, and
//! reading and updating users.

use std::sync::Arc;

use crate::page::{CreatedKey, Page, PageRequest, UsersKey};
use crate::ports::{
    CreateUserError, NewUser, PasswordHasher, TicketRepository, UserChanges, UserRepository,
};
use crate::values::{Email, Password, Username};
use crate::{Caller, RepositoryError, Role, Ticket, User, UserId};

/// Who vouches for a registration that asks for staff rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationAuthority {
    /// Nobody: only customers may register.
    Anonymous,
    /// The request carried the configured staff API key (checked by the caller of
    /// the use case, in constant time).
    StaffKey,
    /// A logged-in user; only a superuser may create staff.
    User(Caller),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub username: Username,
    pub is_staff: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("registering staff needs the staff API key or a superuser")]
    StaffAuthorizationRequired,
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown e-mail, wrong password or deactivated account: deliberately one case.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures for the account or from the address (only
    /// [`crate::throttle::LoginThrottle::login`] refuses so).
    #[error("too many failed logins")]
    TooManyFailures(crate::throttle::Throttled),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadUserError {
    #[error("not allowed")]
    Forbidden,
    #[error("user not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub username: Option<Username>,
    pub password: Option<Password>,
    pub current_password: Option<String>,
    pub is_staff: Option<bool>,
    pub is_active: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    #[error("not allowed")]
    Forbidden,
    #[error("user not found")]
    NotFound,
    #[error("changing the password needs `current_password`")]
    CurrentPasswordRequired,
    #[error("`current_password` is wrong")]
    CurrentPasswordIncorrect,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

/// A user and a page of their tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWithTickets {
    pub user: User,
    pub tickets: Page<Ticket, CreatedKey>,
}

#[derive(Clone)]
pub struct UserService {
    users: Arc<dyn UserRepository>,
    tickets: Arc<dyn TicketRepository>,
    hasher: Arc<dyn PasswordHasher>,
}

impl UserService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        tickets: Arc<dyn TicketRepository>,
        hasher: Arc<dyn PasswordHasher>,
    ) -> Self {
        Self {
            users,
            tickets,
            hasher,
        }
    }

    #[tracing::instrument(level = "debug", name = "users.register", skip_all)]
    pub async fn register(
        &self,
        registration: Registration,
        authority: RegistrationAuthority,
    ) -> Result<User, RegisterError> {
        let role = if registration.is_staff {
            match authority {
                RegistrationAuthority::StaffKey => Role::Staff,
                RegistrationAuthority::User(caller) if caller.role.is_superuser() => Role::Staff,
                RegistrationAuthority::User(_) | RegistrationAuthority::Anonymous => {
                    return Err(RegisterError::StaffAuthorizationRequired)
                }
            }
        } else {
            Role::Customer
        };
        let password_hash = self.hasher.hash(registration.password).await?;
        let user = NewUser {
            email: registration.email,
            username: registration.username,
            password_hash,
            role,
        };
        self.users.create_user(user).await.map_err(|e| match e {
            CreateUserError::EmailTaken => RegisterError::EmailTaken,
            CreateUserError::Repository(e) => RegisterError::Unexpected(e),
        })
    }

    /// Checks credentials; returns the user, with their role, to issue a token for.
    #[tracing::instrument(level = "debug", name = "users.login", skip_all)]
    pub async fn login(&self, email: &str, password: String) -> Result<Caller, LoginError> {
        let credentials = self.users.find_credentials(email.trim()).await?;
        let hash = credentials.as_ref().map(|c| c.password_hash.clone());
        let password_matches = self.hasher.verify(password, hash).await?;
        match credentials {
            Some(c) if password_matches && c.is_active => Ok(Caller {
                id: c.user_id,
                role: c.role,
            }),
            Some(_) | None => Err(LoginError::InvalidCredentials),
        }
    }

    /// The caller behind a verified token, read afresh for every request.
    #[tracing::instrument(level = "debug", name = "users.authenticate", skip_all, fields(user.id = %id))]
    pub async fn authenticate(&self, id: UserId) -> Result<Option<Caller>, RepositoryError> {
        self.users.find_active_caller(id).await
    }

    /// Creates a superuser, or promotes the account with that e-mail to one (and sets
    /// its password and username).
    #[tracing::instrument(level = "debug", name = "users.create_superuser", skip_all)]
    pub async fn create_superuser(
        &self,
        email: Email,
        username: Username,
        password: Password,
    ) -> Result<User, RepositoryError> {
        let password_hash = self.hasher.hash(password).await?;
        self.users
            .upsert_superuser(NewUser {
                email,
                username,
                password_hash,
                role: Role::Superuser,
            })
            .await
    }

    /// Staff see everyone; a user sees themself.
    #[tracing::instrument(level = "debug", name = "users.get_user", skip_all, fields(caller.id = %caller.id, user.id = %id))]
    pub async fn get_user(
        &self,
        caller: Caller,
        id: UserId,
        tickets: PageRequest<CreatedKey>,
    ) -> Result<UserWithTickets, ReadUserError> {
        if caller.id != id && !caller.is_staff() {
            return Err(ReadUserError::Forbidden);
        }
        let user = self
            .users
            .find_user(id)
            .await?
            .ok_or(ReadUserError::NotFound)?;
        let tickets = self.tickets.list_by_author(id, tickets).await?;
        Ok(UserWithTickets { user, tickets })
    }

    #[tracing::instrument(level = "debug", name = "users.list_users", skip_all, fields(caller.id = %caller.id))]
    pub async fn list_users(
        &self,
        caller: Caller,
        page: PageRequest<UsersKey>,
    ) -> Result<Page<User, UsersKey>, ReadUserError> {
        if !caller.is_staff() {
            return Err(ReadUserError::Forbidden);
        }
        Ok(self.users.list_users(page).await?)
    }

    /// Users change their own username and password; staff change customers'
    /// usernames; superusers change anyone's username and anyone else's staff and
    /// active flags. Nobody changes another's password or their own flags.
    #[tracing::instrument(level = "debug", name = "users.update_user", skip_all, fields(caller.id = %caller.id, user.id = %id))]
    pub async fn update_user(
        &self,
        caller: Caller,
        id: UserId,
        update: UserUpdate,
    ) -> Result<User, UpdateUserError> {
        let is_self = caller.id == id;
        if !is_self && !caller.is_staff() {
            return Err(UpdateUserError::Forbidden);
        }
        let target = self
            .users
            .find_user(id)
            .await?
            .ok_or(UpdateUserError::NotFound)?;
        let changes_flags = update.is_staff.is_some() || update.is_active.is_some();
        if is_self {
            if changes_flags {
                return Err(UpdateUserError::Forbidden);
            }
        } else {
            let may_rename = caller.role.is_superuser() || target.role == Role::Customer;
            if update.password.is_some()
                || (update.username.is_some() && !may_rename)
                || (changes_flags && !caller.role.is_superuser())
            {
                return Err(UpdateUserError::Forbidden);
            }
        }

        let password_hash = match update.password {
            Some(new_password) => {
                let current = update
                    .current_password
                    .ok_or(UpdateUserError::CurrentPasswordRequired)?;
                let stored = self.users.find_password_hash(id).await?;
                if stored.is_none() {
                    return Err(UpdateUserError::NotFound);
                }
                if !self.hasher.verify(current, stored).await? {
                    return Err(UpdateUserError::CurrentPasswordIncorrect);
                }
                Some(self.hasher.hash(new_password).await?)
            }
            None => None,
        };
        let changes = UserChanges {
            username: update.username,
            password_hash,
            is_staff: update.is_staff,
            is_active: update.is_active,
        };
        if changes.is_empty() {
            return Ok(target);
        }
        self.users
            .update_user(id, changes)
            .await?
            .ok_or(UpdateUserError::NotFound)
    }
}

#[cfg(test)]
mod tests;
