package import RewindCore

/// The function a store tells about every commit of this process (`EventStore.onCommit`), kept as a store keeps it:
/// in a `Mutex<CommitObserver?>`.
///
/// Held in a class: a function value kept directly in a `Mutex` is re-wrapped in a reabstraction thunk on every
/// access, and the chain of thunks grows with every commit.
package final class CommitObserver: Sendable {
    package let handler: @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void

    package init(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void) { self.handler = handler }
}
