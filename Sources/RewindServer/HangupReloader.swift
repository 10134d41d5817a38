import Logging
import ServiceLifecycle
import UnixSignals

/// Re-reads the TLS certificate and key on SIGHUP (`systemctl reload rewind`). Without TLS there is nothing to re-read,
/// but SIGHUP is still caught: its default action would end the server.
struct HangupReloader: Service {
    var certificates: TLSCertificates?
    var logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            guard let certificates else {
                logger.notice("SIGHUP: nothing to reload")
                continue
            }
            do {
                try certificates.reload()
                logger.notice(
                    "reloaded the TLS certificate and key",
                    metadata: ["tls.certificate": "\(certificates.certificatePath)", "tls.expires": "\(certificates.expires)"]
                )
            } catch {
                logger.error(
                    "TLS certificate not reloaded; the previous one stays in use",
                    metadata: ["error": "\(error.description)"]
                )
            }
        }
    }
}
