import Crypto
import Foundation
import SwiftASN1
import X509

/// The cluster's certificate authority: it signs one certificate per node, naming the node
/// id as the certificate's DNS subject alternative name, for both ends of a connection
/// (server and client authentication). Every daemon and agent trusts this CA only, so a
/// peer without a certificate from it is refused, and a client that dials node Y's agent
/// checks that the certificate says Y (a certificate of node X cannot stand in for Y).
///
/// Keys are ECDSA P-256. Pure: makes PEM text; `TLSDirectory` writes and reads files.
public struct ClusterCA: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// PEM text of the CA certificate (what every node trusts) and of its private key
    /// (what `cert` signs with: keep it with the admin, not on every node).
    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString } }
    public var keyPEM: String { key.pemRepresentation }

    /// A new CA named `name`, valid for `years`.
    public static func make(name: String = "Berth cluster CA", years: Int = 10, now: Date = Date()) throws -> ClusterCA {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Berth")
            CommonName(name)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return ClusterCA(certificate: certificate, key: key)
    }

    /// The CA read back from its PEM certificate and key.
    public init(certificatePEM: String, keyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw TLSSetupError("the CA key does not match the CA certificate")
        }
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A certificate for node `node` (its id, a DNS-name-like label) and its private key, PEM.
    public func issue(node: String, years: Int = 5, now: Date = Date()) throws -> (certificatePEM: String, keyPEM: String) {
        try NodeName.check(node)
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Berth")
            CommonName(node)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames([.dnsName(node)])
                AuthorityKeyIdentifier(keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(self.key))
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }
}

/// Node ids as certificates carry them: a DNS label (letters, digits, '-', 1-63 characters,
/// not starting or ending with '-'), so that hostname verification can match it exactly.
public enum NodeName {
    public static func check(_ node: String) throws {
        let bytes = Array(node.utf8)
        let ok = (1...63).contains(bytes.count) && bytes.first != 0x2d && bytes.last != 0x2d
            && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || $0 == 0x2d }
        if !ok { throw TLSSetupError("node id \"\(node)\" must be a DNS label: 1-63 letters, digits or '-', not starting or ending with '-'") }
    }

    /// The node a peer certificate names: its DNS subject alternative name.
    public static func of(_ certificate: Certificate) -> String? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names { if case .dnsName(let node) = name { return node } }
        return nil
    }
}

/// A certificate set-up problem, said plainly.
public struct TLSSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
