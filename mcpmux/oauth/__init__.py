"""OAuth 2.1 sign-in to remote servers: the SDK's client flow, tokens in the keyring, `auth login` and serve's side."""
