/// A failure of an admin command, with a one-line description a person can act on.
public struct AdminError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
