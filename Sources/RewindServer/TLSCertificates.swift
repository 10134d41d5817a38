import NIOCore
public import NIOSSL
import RewindCore
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The server's certificate chain and private key (`--tls-cert`, `--tls-key`), read from PEM files.
///
/// Every TLS handshake asks for the current pair (NIOSSL's context callback), so `reload()` (on SIGHUP) puts a renewed
/// certificate in use for the next connection while the connections already open keep the session they negotiated:
/// nothing is dropped, and no new server has to be built.
public final class TLSCertificates: Sendable {
    /// A certificate chain with the key of its first certificate.
    struct Pair: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        /// End of the leaf certificate's validity, seconds since 1970.
        var notValidAfter: Int
    }

    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<Pair>

    /// Reads and checks both files; throws naming the file at fault.
    public init(certificate: String, key: String) throws(TLSFileError) {
        certificatePath = certificate
        keyPath = key
        current = Mutex(try Self.read(certificate: certificate, key: key))
    }

    /// Reads both files again and uses them for the next handshakes; on any problem the pair in use stays.
    public func reload() throws(TLSFileError) {
        let pair = try Self.read(certificate: certificatePath, key: keyPath)
        current.withLock { $0 = pair }
    }

    /// When the certificate in use stops being valid (RFC 3339), for logs.
    public var expires: String {
        Timestamp(microseconds: Int64(current.withLock { $0.notValidAfter }) * 1_000_000).description
    }

    /// A server configuration whose certificate and key are looked up at each handshake.
    public func serverConfiguration() -> TLSConfiguration {
        let pair = current.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: pair.chain.map { .certificate($0) },
            privateKey: .privateKey(pair.key)
        )
        configuration.sslContextCallback = { [self] _, promise in
            let pair = current.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain.map { .certificate($0) }
            override.privateKey = .privateKey(pair.key)
            promise.succeed(override)
        }
        return configuration
    }

    static func read(certificate: String, key: String) throws(TLSFileError) -> Pair {
        let certificateBytes = try contents(of: certificate)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        } catch {
            throw TLSFileError(path: certificate, problem: "is not a PEM certificate")
        }
        guard let leaf = chain.first else { throw TLSFileError(path: certificate, problem: "holds no PEM certificate") }
        let keyBytes = try contents(of: key)
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSFileError(path: key, problem: "is not a PEM private key (an encrypted key is not supported)")
        }
        let now = Int(Date().timeIntervalSince1970)
        let notValidAfter = Int(leaf.notValidAfter)
        let notValidBefore = Int(leaf.notValidBefore)
        func time(_ seconds: Int) -> String { Timestamp(microseconds: Int64(seconds) * 1_000_000).description }
        if notValidAfter < now {
            throw TLSFileError(path: certificate, problem: "the certificate expired at \(time(notValidAfter))")
        }
        if notValidBefore > now {
            throw TLSFileError(path: certificate, problem: "the certificate is not valid before \(time(notValidBefore))")
        }
        // BoringSSL refuses a private key that does not belong to the leaf certificate when a context is made.
        do {
            _ = try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: chain.map { .certificate($0) },
                    privateKey: .privateKey(privateKey)
                )
            )
        } catch {
            throw TLSFileError(path: key, problem: "the key does not match the certificate in \(certificate)")
        }
        return Pair(chain: chain, key: privateKey, notValidAfter: notValidAfter)
    }

    private static func contents(of path: String) throws(TLSFileError) -> [UInt8] {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSFileError(path: path, problem: "no such file")
        }
        if isDirectory { throw TLSFileError(path: path, problem: "is a directory") }
        guard FileManager.default.isReadableFile(atPath: path), let data = FileManager.default.contents(atPath: path) else {
            throw TLSFileError(path: path, problem: "cannot be read (permission denied)")
        }
        return Array(data)
    }
}

/// A certificate or key file that cannot serve: the file and what is wrong with it, on one line.
public struct TLSFileError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path): \(problem)" }
}
