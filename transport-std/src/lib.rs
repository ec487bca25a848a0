//! std::net sockets and std::time driving `producer-core` (issue #4).
//!
//! Nothing lives here yet: the blocking `Producer` arrives with the sans-IO client it drives.
