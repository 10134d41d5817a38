import HTTPTypes
import Synchronization

/// Counts open SSE subscriptions, in all and per token subject, so one client cannot take every connection the
/// process can hold (`--max-subscribers`, `--max-subscribers-per-subject`).
final class SubscriberQuota: Sendable {
    private struct Counts {
        var total = 0
        var bySubject: [String: Int] = [:]
    }

    private let counts = Mutex(Counts())
    let maxTotal: Int
    let maxPerSubject: Int

    init(maxTotal: Int, maxPerSubject: Int) {
        self.maxTotal = maxTotal
        self.maxPerSubject = maxPerSubject
    }

    /// A place for one subscription, held until the lease is released; throws 429 when there is none.
    func acquire(subject: String?) throws(Problem) -> Lease {
        let refusal: String? = counts.withLock { counts in
            if counts.total >= maxTotal { return "the server holds its limit of \(maxTotal) subscriptions" }
            if let subject {
                let held = counts.bySubject[subject, default: 0]
                if held >= maxPerSubject { return "this token's subject holds its limit of \(maxPerSubject) subscriptions" }
                counts.bySubject[subject] = held + 1
            }
            counts.total += 1
            return nil
        }
        if let refusal { throw Problem(.tooManyRequests, refusal + "; close one or retry later", headers: [.retryAfter: "5"]) }
        return Lease(quota: self, subject: subject)
    }

    fileprivate func release(subject: String?) {
        counts.withLock { counts in
            counts.total -= 1
            if let subject {
                let held = counts.bySubject[subject, default: 1] - 1
                counts.bySubject[subject] = held > 0 ? held : nil
            }
        }
    }

    /// Gives its place back when dropped, so a response that never ran its body still frees it.
    final class Lease: Sendable {
        private let quota: SubscriberQuota
        private let subject: String?

        fileprivate init(quota: SubscriberQuota, subject: String?) {
            self.quota = quota
            self.subject = subject
        }

        deinit { quota.release(subject: subject) }
    }
}
