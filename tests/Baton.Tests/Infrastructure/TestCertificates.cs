using System.Net;
using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Baton.Tests.Infrastructure;

/// <summary>Self-signed server certificates for 127.0.0.1, written as PEM or PKCS#12, and clients that trust exactly one.</summary>
internal static class TestCertificates
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Created = new();

    public static X509Certificate2 Create(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        Created[Convert.ToHexString(certificate.GetCertHash())] = true;
        return certificate;
    }

    /// <summary>Writes the certificate and its key as two PEM files, each replaced in one rename.</summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string keyPath)
    {
        Replace(certificatePath, System.Text.Encoding.ASCII.GetBytes(certificate.ExportCertificatePem()));
        Replace(keyPath, System.Text.Encoding.ASCII.GetBytes(certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()));
    }

    public static void WritePfx(X509Certificate2 certificate, string path, string password)
        => Replace(path, certificate.Export(X509ContentType.Pkcs12, password));

    /// <summary>Writes the file beside the target, then renames it over the target.</summary>
    public static void Replace(string path, byte[] contents)
    {
        var temporary = path + ".new";
        File.WriteAllBytes(temporary, contents);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>A handler that trusts the certificates made here (and no other), and tells which one it was shown.</summary>
    public static SocketsHttpHandler Handler(Action<string> served, CookieContainer? jar = null)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = jar is not null };
        if (jar is not null)
        {
            handler.CookieContainer = jar;
        }

        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            var thumbprint = certificate is null ? string.Empty : Convert.ToHexString(certificate.GetCertHash());
            served(thumbprint);
            return Created.ContainsKey(thumbprint);
        };
        return handler;
    }

    /// <summary>The thumbprint a new connection to the address is shown.</summary>
    public static async Task<string> ServedThumbprintAsync(Uri address)
    {
        var served = string.Empty;
        using var client = new HttpClient(Handler(t => served = t)) { BaseAddress = address };
        using var response = await client.GetAsync(new Uri("/_baton/live", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        return served;
    }
}
