"""Polls (投票评选) and contests with judges (评选大赛)."""
