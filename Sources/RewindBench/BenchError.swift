/// A benchmark that cannot run, with a reason a person can act on.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
