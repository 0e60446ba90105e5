/// The control socket (`control` section): a unix socket speaking newline-delimited JSON
/// commands (`loom ctl`), for changing the running configuration and reading its state.
/// Only the user loom runs as (and root) can connect: the socket is mode 0600 and every
/// peer's credentials are checked.
public struct ControlSettings: Sendable, Equatable {
    /// `socket`: the socket's path, absolute after loading (a relative one is taken from
    /// the configuration file's directory).
    public var socket: String

    public init(socket: String) {
        self.socket = socket
    }

    /// The longest path a unix socket address holds (`sun_path` is 108 bytes with its NUL).
    public static let maxPathBytes = 107
}
