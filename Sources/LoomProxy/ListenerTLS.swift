import Foundation
import LoomConfig
import NIOCore
import LoomWasm
import NIOSSL

/// A listener's TLS termination, loaded from its `tls` settings once per configuration
/// load: one server context for every connection the listener accepts under that
/// configuration (a reload loads the files again; open connections keep their handshake).
///
/// The first certificate is the default; with several, the client's SNI name picks the
/// one whose certificate names it (`ServerNameTable`: exact names, then `*.` wildcards one
/// label deep, as browsers match them), as HAProxy picks among its `crt` files. Clients
/// are asked for a certificate with `client_auth` (`request`: verified when sent;
/// `require`: the handshake fails without one), checked against `client_ca_file`.
final class ListenerTLS: Sendable {
    let context: NIOSSLContext
    let settings: TLSSettings
    /// The contents of every file loaded: a reload compares them to tell whether the
    /// certificates changed under an unchanged configuration.
    let material: [[UInt8]]

    private init(context: NIOSSLContext, settings: TLSSettings, material: [[UInt8]]) {
        self.context = context
        self.settings = settings
        self.material = material
    }

    /// Why a listener's TLS settings cannot be loaded, naming the file and the key.
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    /// A certificate chain, its key, and the DNS names its leaf certificate is valid for.
    struct Identity {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        let names: [String]
    }

    static func load(_ settings: TLSSettings) throws(LoadError) -> ListenerTLS {
        var material: [[UInt8]] = []
        var identities: [Identity] = []
        for certificate in settings.certificates {
            identities.append(try identity(certificate, into: &material))
        }
        guard let primary = identities.first else { throw LoadError(description: "no certificate") }

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: primary.chain.map { .certificate($0) }, privateKey: .privateKey(primary.key))
        configuration.minimumTLSVersion = settings.minVersion == "1.3" ? .tlsv13 : .tlsv12
        // Names from `TLSSettings.supportedCiphers` only (the decoder checked): BoringSSL stops
        // the process on a list it cannot use.
        if let ciphers = settings.ciphers { configuration.cipherSuites = ciphers.joined(separator: ":") }
        // HTTP/2 first (RFC 9113 §3.2); a client that offers neither, or no ALPN, gets HTTP/1.1.
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if settings.verifiesClients {
            // The validator requires it; never let its absence turn verification off.
            guard let caFile = settings.clientCAFile else { throw LoadError(description: "client_auth needs client_ca_file") }
            configuration.trustRoots = .certificates(try certificates(caFile, key: "client_ca_file", into: &material))
            configuration.certificateVerification = settings.clientAuth == .require ? .noHostnameVerification : .optionalVerification
            // Tells clients which CAs are accepted, so curl or a browser offers the right certificate.
            configuration.sendCANameList = true
        }
        if identities.count > 1 {
            let table = ServerNameTable(identities.enumerated().map { ($0.element.names, $0.offset) })
            let overrides = identities.map { identity in
                var change = NIOSSLContextConfigurationOverride()
                change.certificateChain = identity.chain.map { .certificate($0) }
                change.privateKey = .privateKey(identity.key)
                return change
            }
            configuration.sslContextCallback = { values, promise in
                let index = values.serverHostname.flatMap { table.match($0) } ?? 0
                promise.succeed(index == 0 ? .noChanges : overrides[index])
            }
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            return ListenerTLS(context: context, settings: settings, material: material)
        } catch {
            throw LoadError(description: "the TLS settings were refused: \(error)")
        }
    }

    /// What `load` finds wrong (for `loom validate` and every configuration load).
    static let check: TLSCheck = { settings in
        switch Result(catching: { () throws(LoadError) in try load(settings) }) {
        case .success: []
        case .failure(let error): [error.description]
        }
    }

    private static func read(_ path: String, key: String) throws(LoadError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "\(key) \(path): cannot be read")
        }
        return Array(data)
    }

    /// The certificates in PEM file `path` (at least one); `key` names the setting in errors.
    /// The bytes read go to `material` (each file is read once).
    static func certificates(_ path: String, key: String, into material: inout [[UInt8]]) throws(LoadError) -> [NIOSSLCertificate] {
        let bytes = try read(path, key: key)
        material.append(bytes)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw LoadError(description: "\(key) \(path): not a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else { throw LoadError(description: "\(key) \(path): no certificate in it") }
        return certificates
    }

    /// A certificate's chain and key, checked to belong together (a context built from
    /// them alone refuses a key that does not match).
    static func identity(_ certificate: TLSSettings.Certificate, into material: inout [[UInt8]]) throws(LoadError) -> Identity {
        let chain = try certificates(certificate.certFile, key: "cert_file", into: &material)
        let keyBytes = try read(certificate.keyFile, key: "key_file")
        material.append(keyBytes)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw LoadError(description: "key_file \(certificate.keyFile): not a PEM private key (\(error))")
        }
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw LoadError(description: "key_file \(certificate.keyFile) does not match cert_file \(certificate.certFile) (\(error))")
        }
        let names = chain[0]._subjectAlternativeNames().compactMap { name in
            name.nameType == .dnsName ? String(decoding: name.contents, as: UTF8.self).lowercased() : nil
        }
        return Identity(chain: chain, key: key, names: names)
    }
}

extension ConfigChecks {
    /// Every check the running gateway makes: plugin modules and TLS files.
    public static let full = ConfigChecks(plugin: PluginLoader.check, tls: ListenerTLS.check, upstreamTLS: UpstreamTLSClient.check)
}
