"""SCIM 2.0 provisioning (RFC 7643/7644): identity providers create, update and deprovision allotment's users and
groups at /scim/v2, authenticated with bearer tokens issued per provisioning client."""
