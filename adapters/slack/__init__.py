"""The Slack adapter, on slack-bolt's AsyncApp (Socket Mode or the HTTP Events API)."""
