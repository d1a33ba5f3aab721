namespace Baton.Gateway.Tls;

/// <summary>TLS log events (ids 5000–5099).</summary>
internal static partial class Log
{
    [LoggerMessage(5001, LogLevel.Information, "Serving certificate {Subject} ({Thumbprint}), valid until {NotAfter:u}.", EventName = "CertificateLoaded")]
    public static partial void CertificateLoaded(ILogger logger, string subject, string thumbprint, DateTime notAfter);

    [LoggerMessage(5002, LogLevel.Information, "Certificate files changed: new connections now get {Subject} ({Thumbprint}), valid until {NotAfter:u}.", EventName = "CertificateReloaded")]
    public static partial void CertificateReloaded(ILogger logger, string subject, string thumbprint, DateTime notAfter);

    [LoggerMessage(5003, LogLevel.Warning, "Certificate files changed but could not be loaded ({Reason}); the current certificate stays in service.", EventName = "CertificateNotReloaded")]
    public static partial void CertificateNotReloaded(ILogger logger, string reason);

    [LoggerMessage(5004, LogLevel.Warning, "Certificate {Subject} expires at {NotAfter:u}: replace its files (they are reloaded without a restart).", EventName = "CertificateExpiring")]
    public static partial void CertificateExpiring(ILogger logger, string subject, DateTime notAfter);
}
