using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Tls;

/// <summary>
/// The certificate the gateway's HTTPS endpoints serve (<c>Baton:Tls</c>). Loaded once before the server
/// binds (a file that does not load stops the start, naming the setting), then checked every
/// <c>ReloadCheckInterval</c>: when the files' contents change, new handshakes get the new certificate while
/// connections already open keep theirs. Contents are compared, not timestamps, so a same-size rotation or a
/// symlink swap (mounted secrets) is seen too; a file caught half-written fails to load, is logged once, and
/// the current certificate stays in service until the next check finds a good one.
/// </summary>
internal sealed class ServerCertificate(IOptions<BatonOptions> options, TimeProvider time, ILogger<ServerCertificate> logger) : BackgroundService
{
    private const string Section = BatonConstants.ConfigSection + ":Tls";
    private readonly Lock _checking = new();
    private volatile Loaded? _current;
    private byte[]? _failedDigest;
    private DateTimeOffset _expiryWarnedAt = DateTimeOffset.MinValue;

    public bool IsConfigured => options.Value.Tls.CertificatePath is not null;

    /// <summary>What new handshakes present: the leaf, its intermediates, built once per certificate.</summary>
    public SslStreamCertificateContext Context => Current.Context;

    /// <summary>The leaf certificate now in service.</summary>
    public X509Certificate2 Certificate => Current.Leaf;

    private Loaded Current => _current ?? throw new InvalidOperationException("The server certificate is used before it was loaded.");

    /// <summary>Loads the certificate if it is not loaded yet; throws, naming the setting, when it cannot.</summary>
    public void EnsureLoaded()
    {
        if (_current is not null)
        {
            return;
        }

        var files = Read();
        try
        {
            _current = Load(files);
        }
        catch (Exception ex) when (IsLoadFailure(ex))
        {
            throw new InvalidOperationException($"{Section}: the certificate in '{options.Value.Tls.CertificatePath}' could not be loaded: {ex.Message}", ex);
        }

        Log.CertificateLoaded(logger, _current.Leaf.Subject, _current.Leaf.Thumbprint, _current.Leaf.NotAfter);
        WarnIfExpiring(_current.Leaf);
    }

    /// <summary>Reads the files and swaps in their certificate if their contents changed and it loads.</summary>
    public void CheckForChange()
    {
        lock (_checking)
        {
            Check();
        }
    }

    private void Check()
    {
        Files files;
        try
        {
            files = Read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.CertificateNotReloaded(logger, ex.Message);
            return;
        }

        if (_current is { } current && files.Digest.AsSpan().SequenceEqual(current.Digest))
        {
            WarnIfExpiring(current.Leaf);
            return;
        }

        if (_failedDigest is not null && files.Digest.AsSpan().SequenceEqual(_failedDigest))
        {
            return;
        }

        try
        {
            var loaded = Load(files);
            _current = loaded;
            _failedDigest = null;
            Log.CertificateReloaded(logger, loaded.Leaf.Subject, loaded.Leaf.Thumbprint, loaded.Leaf.NotAfter);
            WarnIfExpiring(loaded.Leaf);
        }
        catch (Exception ex) when (IsLoadFailure(ex))
        {
            _failedDigest = files.Digest;
            Log.CertificateNotReloaded(logger, ex.Message);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!IsConfigured)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.Tls.ReloadCheckInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                CheckForChange();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static bool IsLoadFailure(Exception ex)
        => ex is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException;

    private Files Read()
    {
        var tls = options.Value.Tls;
        var certificate = File.ReadAllBytes(tls.CertificatePath!);
        var key = tls.KeyPath is null ? null : File.ReadAllBytes(tls.KeyPath);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(certificate);
        hash.AppendData(key ?? []);
        return new Files(certificate, key, hash.GetHashAndReset());
    }

    private Loaded Load(Files files)
    {
        var password = options.Value.Tls.Password;
        X509Certificate2 leaf;
        var chain = new X509Certificate2Collection();
        if (IsPem(files.Certificate))
        {
            var certificatePem = Encoding.UTF8.GetString(files.Certificate);
            var keyPem = files.Key is null ? certificatePem : Encoding.UTF8.GetString(files.Key);
            leaf = string.IsNullOrEmpty(password)
                ? X509Certificate2.CreateFromPem(certificatePem, keyPem)
                : X509Certificate2.CreateFromEncryptedPem(certificatePem, keyPem, password);
            chain.ImportFromPem(certificatePem);
            chain.RemoveAt(0);
        }
        else
        {
            if (files.Key is not null)
            {
                throw new InvalidDataException($"{Section}:KeyPath is set, but '{options.Value.Tls.CertificatePath}' is not PEM: a PKCS#12 file carries its own key.");
            }

            var all = X509CertificateLoader.LoadPkcs12Collection(files.Certificate, password);
            leaf = all.FirstOrDefault(c => c.HasPrivateKey)
                ?? throw new InvalidDataException("the PKCS#12 file holds no certificate with a private key.");
            chain.AddRange(all.Where(c => !ReferenceEquals(c, leaf)).ToArray());
        }

        if (!leaf.HasPrivateKey)
        {
            throw new InvalidDataException("the certificate has no private key.");
        }

        return new Loaded(leaf, SslStreamCertificateContext.Create(leaf, chain, offline: true), files.Digest);
    }

    // PEM is text with a BEGIN line somewhere near the top (after a byte-order mark or openssl's "Bag
    // Attributes", perhaps); PKCS#12 is binary DER.
    private static bool IsPem(byte[] contents)
        => contents.AsSpan(0, Math.Min(contents.Length, 64 * 1024)).IndexOf("-----BEGIN "u8) >= 0;

    // Logged once a day while the certificate in service nears its end (checked at each load and check).
    private void WarnIfExpiring(X509Certificate2 leaf)
    {
        var now = time.GetUtcNow();
        var left = leaf.NotAfter.ToUniversalTime() - now.UtcDateTime;
        if (left < TimeSpan.FromDays(14) && now - _expiryWarnedAt >= TimeSpan.FromDays(1))
        {
            _expiryWarnedAt = now;
            Log.CertificateExpiring(logger, leaf.Subject, leaf.NotAfter);
        }
    }

    private sealed record Files(byte[] Certificate, byte[]? Key, byte[] Digest);

    private sealed record Loaded(X509Certificate2 Leaf, SslStreamCertificateContext Context, byte[] Digest);
}
