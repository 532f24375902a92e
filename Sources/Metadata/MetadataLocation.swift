import Foundation

/// Where the cluster's metadata lives, from the daemon's `--metadata URL`:
/// `sqlite:///PATH` (the embedded default, a file under the state directory) or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE&sslrootcert=PATH]`
/// (`postgresql://` too). Pure parsing: no I/O, no fallback from one to the other.
public enum MetadataLocation: Equatable, Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresSettings)

    public struct PostgresSettings: Equatable, Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var sslMode: SSLMode
        /// CA certificates (PEM) that verify the server (`sslmode=verify-full`).
        public var sslRootCertificate: String?

        /// libpq's modes that Berth supports: `disable` (plain text: a loopback or a
        /// private network only), `prefer` (TLS if the server offers it, libpq's default and
        /// ours), `require` (TLS, the server not verified), `verify-full` (TLS, the server's
        /// certificate verified against `sslrootcert` and its name).
        public enum SSLMode: String, Sendable, CaseIterable {
            case disable, prefer, require
            case verifyFull = "verify-full"
        }

        public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String,
                    sslMode: SSLMode = .prefer, sslRootCertificate: String? = nil) {
            (self.host, self.port, self.user, self.password, self.database) = (host, port, user, password, database)
            (self.sslMode, self.sslRootCertificate) = (sslMode, sslRootCertificate)
        }
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `url`; `environment` supplies `PGPASSWORD` when the URL has no password.
    public static func parse(_ url: String, environment: [String: String] = [:]) throws -> MetadataLocation {
        func invalid(_ why: String) -> Invalid { Invalid(description: "--metadata \(redacted(url)): \(why)") }
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard path.hasPrefix("/"), path.count > 1 else { throw invalid("expected sqlite:///ABSOLUTE/PATH") }
            return .sqlite(path: path)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), let components = URLComponents(string: url) else {
            throw invalid("expected sqlite:///PATH or postgres://USER@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw invalid("no database (postgres://USER@HOST/DATABASE)") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port)") }
        // URLComponents decodes user and password already.
        var settings = PostgresSettings(host: host, port: port, user: user, password: components.password ?? environment["PGPASSWORD"],
                                        database: database)
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = PostgresSettings.SSLMode(rawValue: value) else {
                    throw invalid("sslmode \(item.value ?? "") (disable, prefer, require or verify-full)")
                }
                settings.sslMode = mode
            case "sslrootcert":
                guard let value = item.value, value.hasPrefix("/") else { throw invalid("sslrootcert needs an absolute path") }
                settings.sslRootCertificate = value
            default:
                throw invalid("unknown parameter \(item.name)")
            }
        }
        if settings.sslMode == .verifyFull && settings.sslRootCertificate == nil {
            throw invalid("sslmode=verify-full needs sslrootcert=PATH")
        }
        return .postgres(settings)
    }

    /// `url` with its password (if any) replaced, for messages.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    /// The URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite://" + path
        case .postgres(let s):
            var text = "postgres://\(s.user)@\(s.host):\(s.port)/\(s.database)?sslmode=\(s.sslMode.rawValue)"
            if let ca = s.sslRootCertificate { text += "&sslrootcert=" + ca }
            return text
        }
    }
}
