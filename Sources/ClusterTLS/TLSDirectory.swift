import Foundation
import GRPCNIOTransportHTTP2
import X509

/// One node's TLS material in a directory: `ca.pem` (the cluster CA, the only root trusted),
/// `node.pem` (this node's certificate, naming its node id) and `node-key.pem` (mode 0600).
/// `provisionctl cluster init` and `cluster cert` make them (docs/cluster.md).
///
/// Both ends authenticate: servers require a client certificate from the cluster CA, and
/// clients verify the server's certificate against the CA and the node id they dialled.
/// There is no plain-text mode.
public struct TLSDirectory: Sendable {
    public static let caFile = "ca.pem"
    public static let certificateFile = "node.pem"
    public static let keyFile = "node-key.pem"

    public let path: String
    /// The node id this directory's certificate names.
    public let node: String

    /// Reads the directory; refuses one with a missing file or a certificate without a node id.
    public init(path: String) throws {
        self.path = path
        for file in [Self.caFile, Self.certificateFile, Self.keyFile] where !FileManager.default.fileExists(atPath: path + "/" + file) {
            throw TLSSetupError("\(path)/\(file) is missing (make it with `provisionctl cluster cert NODE --ca-dir DIR`)")
        }
        let text: String
        do { text = try String(contentsOfFile: path + "/" + Self.certificateFile, encoding: .utf8) } catch {
            throw TLSSetupError("cannot read \(path)/\(Self.certificateFile): \(error.localizedDescription)")
        }
        let certificate: Certificate
        do { certificate = try Certificate(pemEncoded: text) } catch {
            throw TLSSetupError("\(path)/\(Self.certificateFile) is not a PEM certificate: \(error)")
        }
        guard let node = NodeName.of(certificate) else {
            throw TLSSetupError("\(path)/\(Self.certificateFile) names no node id (no DNS subject alternative name)")
        }
        self.node = node
    }

    /// Writes a node's directory, signed by `ca`: made 0700, the key 0600.
    @discardableResult
    public static func write(node: String, ca: ClusterCA, to path: String) throws -> TLSDirectory {
        let issued = try ca.issue(node: node)
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try ca.certificatePEM.write(toFile: path + "/" + caFile, atomically: true, encoding: .utf8)
        try issued.certificatePEM.write(toFile: path + "/" + certificateFile, atomically: true, encoding: .utf8)
        try writeSecret(issued.keyPEM, to: path + "/" + keyFile)
        return try TLSDirectory(path: path)
    }

    /// Writes `text` to a new file of mode 0600 (never readable by others, not even briefly).
    public static func writeSecret(_ text: String, to file: String) throws {
        unlink(file)
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TLSSetupError("cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Foundation.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw TLSSetupError("cannot write \(file): \(String(cString: strerror(errno)))")
        }
    }

    private func file(_ name: String) -> TLSConfig.CertificateSource { .file(path: path + "/" + name, format: .pem) }

    /// A server that accepts only peers with a certificate from the cluster CA.
    public var serverSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [file(Self.certificateFile)],
              privateKey: .file(path: path + "/" + Self.keyFile, format: .pem)) { config in
            config.clientCertificateVerification = .noHostnameVerification
            config.trustRoots = .certificates([file(Self.caFile)])
        }
    }

    /// A client that presents this node's certificate and accepts only a server whose
    /// certificate comes from the cluster CA and names the node being dialled (set as the
    /// connection's authority: `HTTP2ClientTransport.Config.http2.authority`).
    public var clientSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [file(Self.certificateFile)],
              privateKey: .file(path: path + "/" + Self.keyFile, format: .pem)) { config in
            config.serverCertificateVerification = .fullVerification
            config.trustRoots = .certificates([file(Self.caFile)])
        }
    }
}
