"""Live sessions (在线直播): scheduled streams, reminders, a moderated comment wall, attendance from heartbeats."""
