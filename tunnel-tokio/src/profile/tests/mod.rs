//! Tests of the profile's machines, in memory, with a simulated clock: each
//! machine alone against a scripted peer, and the hub's and the agent's
//! machines back to back over real tunnel sessions (`pair`).

mod admission;
mod pair;
mod requester;
