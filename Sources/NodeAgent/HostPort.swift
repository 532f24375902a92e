/// `HOST:PORT` as the daemon's and agent's flags and the device records spell an address:
/// the port after the last colon, an IPv6 host in brackets (`[::1]:7440`).
public enum HostPort {
    /// The host (brackets removed) and port, or nil unless the port is 0…65535.
    public static func parse(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}
