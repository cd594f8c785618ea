"""Local stand-ins for cloud services that cannot run here (Microsoft Graph)."""
