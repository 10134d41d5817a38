import CoreMetrics
internal import Foundation
import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
import RewindStore
import ServiceLifecycle
import Synchronization

/// SQL text with numbered parameters, for statements whose shape depends on the request.
struct QueryBuilder {
    var sql = ""
    var binds = PostgresBindings()

    /// Adds a parameter and returns its placeholder.
    mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

extension Duration {
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
