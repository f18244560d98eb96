"""Single sign-on: connections to OIDC, OAuth 2.0 and SAML 2.0 identity providers, and the logins through them."""
