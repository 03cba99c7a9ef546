"""The closed-form NEON explainer of member-point networks."""
import torch

from ...core import Explainer, labels_and_explained
from ...equations import centroid_scores, masked_min, softmin_shares
from ...validation import sign_stabiliser, tie_stabiliser
from .equations import factored_pair_relevance, group_logmeanexp, group_shares, tie_reciprocal
from .noise import noise_labels, radius_relevance, radius_terms

__all__ = ['MemberExplainer']


class MemberExplainer(Explainer):
    """NEON for member-point networks (Gaussian kernel k-means, labelled partitions), in closed form.

    With member scores s (N, M) and ``S_k = LME^{+gamma}_{j in C_k} s_j``, the four layers collapse to
    ``f_c = min_{k != c} S_c - S_k``. The relevance is the one the Zennit rules give layer by layer:
    ``R_k = softmin_k(beta (S_c - S_k)) f_c`` for each competitor, then the pools' shares, which do not
    depend on the other side of a pair: ``q_i = softmax_{i in C_c}(kappa s_i)`` and
    ``p_j = softmax_{j in C_k}(kappa s_j)`` (kappa = the model's ``relevance_gamma``, by default gamma), so
    ``R_ij = q_i p_j R_k(j)``; finally the midpoint rule on every pair margin ``h_ij = s_i - s_j``, except for
    exact ties (``|h| < epsilon``), which carry no relevance (:func:`.tie_reciprocal`).
    Work O(N |C_c| M) (every member of the explained cluster against every member), memory |C_c| x M per row
    (``row_elements``, which :func:`explain` uses to size its chunks).

    Parameters
    ----------
    model : NeuralizedMembers
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Tie threshold of the pair margins; None for sqrt(machine epsilon of the dtype at run time) x (the
        members' mean squared norm + ``|s_i| + |s_j|`` of the pair) (:func:`.tie_stabiliser`); a float for an
        absolute threshold.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c, as
    :class:`.CentroidExplainer`, short of the share of tied pairs (none on continuous data).

    With a noise rule (DBSCAN, :meth:`.NeuralizedMembers.set_noise_rule`) the logits are ``g_c = min(f_c, e)``
    and ``label`` is also -1 for noise: every logit negative, i.e. no core sample within eps (rows with NaN or
    infinity are the rows whose logits are not finite). A noise row's relevance explains its largest logit,
    which is then ``e = eps^2 - |x - v*|^2 < 0``: ``R_i = eps^2 / D - (x_i - v*_i)^2`` (most negative for the
    features that carry the point farthest from its nearest core sample v*), with ``sum_i R_i = e``. The
    min of ``f_c`` and ``e`` shares relevance by the soft-min with ``beta``, as the min over competitors does.
    """
    outputs = ('relevance', 'parts', 'direction', 'contrasts')
    row_options = ('contrast',)

    def __init__(self, model, cluster, beta, epsilon=None, output='relevance'):
        margin, pool = model.margin, model.own_pool
        super().__init__(model.n_features_in_, margin.origin)
        self.register_buffer('members', margin.members.clone())
        self.register_buffer('member_group', margin.member_group.clone())
        self.register_buffer('groups', pool.groups.clone())
        self.register_buffer('group_valid', pool.valid.clone())
        self.register_buffer('counts', pool.counts.clone())
        self.register_buffer('others', model.pool.valid.clone())
        self.scale = margin.scale
        self.gamma = model.gamma
        self.relevance_gamma = model.relevance_gamma
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        self.row_elements = self.groups.shape[1] * self.members.shape[0]
        self.radius = model.noise_radius  # eps of a noise rule (DBSCAN), else None
        if output == 'parts' and self.radius is not None:
            raise ValueError('per-competitor parts of a model with a noise rule (DBSCAN) would leave out the noise '
                             'branch min(f_c, e), which no competitor carries; use contrast= for one margin.')
        self.output = output
        if output == 'contrasts':  # K copies of each row (_contrasts)
            self.row_elements *= self.groups.shape[0]
        if self.radius is not None:
            self.register_buffer('core', model.radius.core.clone())
            self.row_elements += self.core.shape[0]
            metric = getattr(model.radius, 'metric', None)  # lifted through a projection (docs/pipelines.md)
            self.register_buffer('metric', None if metric is None else metric.clone())

    def forward(self, x, contrast=None):
        """``(label, logits, relevance)``; with ``contrast`` (N,) the relevance of the margin ``h_ck = S_c - S_k``
        against that competitor alone (zero where k is c, and no noise branch); with ``output='parts'`` the
        (N, K, D) part of each competitor (their sum is the explanation); with ``output='contrasts'`` the (N, K, D)
        relevance of every margin ``h_ck``, ``[n, k]`` what ``contrast=k`` gives (one pass per competitor)."""
        x = x if self.origin is None else x - self.origin
        n_rows, n_clusters = x.shape[0], self.groups.shape[0]
        scores = centroid_scores(x, self.members)
        pooled = group_logmeanexp(scores, self.groups, self.group_valid, self.gamma)
        margins = pooled.unsqueeze(2) - pooled.unsqueeze(1)
        logits = masked_min(margins, self.others)
        if self.radius is not None:
            terms, distance = radius_terms(x, self.core, self.radius, self.metric)
            radius_evidence = terms.sum(1)
            logits = torch.minimum(logits, radius_evidence.unsqueeze(1))
        label, explained = labels_and_explained(logits, self.cluster)
        index = explained.reshape(n_rows, 1, 1).expand(n_rows, 1, n_clusters)
        own_margins = margins.gather(1, index).squeeze(1)
        evidence = logits.gather(1, explained.unsqueeze(1))
        if self.output == 'contrasts':
            if contrast is not None:
                raise ValueError('output="contrasts" explains the margin against every competitor at once; '
                                 'contrast= asks for one of them: ask for one of the two.')
            if self.radius is not None:
                label = noise_labels(logits, label)
            return label, logits, self._contrasts(x, scores, explained, own_margins)
        if contrast is not None:
            # the margin itself is the competitor's relevance; h_cc = 0 carries none
            column = contrast.unsqueeze(1)
            selected = torch.zeros_like(own_margins).scatter(1, column, (contrast != explained).to(x.dtype).unsqueeze(1))
            competitor = selected * own_margins
            if self.radius is not None:
                label = noise_labels(logits, label)
            if self.output == 'direction':
                # the pair weights |R_ij / h_ij| of the margin h_ck = S_c - S_k itself (as its relevance uses)
                return label, logits, self._pair_direction(x, scores, explained, competitor)
            return label, logits, self._pair_relevance(x, scores, explained, competitor)
        if self.radius is not None:
            label = noise_labels(logits, label)
            # the min of f_c and e: soft-min shares of the two, as every min-pool
            branches = torch.stack([own_margins.masked_fill(~self.others[explained], float('inf')).amin(1),
                                    radius_evidence], 1)
            split = softmin_shares(branches, torch.ones_like(branches, dtype=torch.bool), self.beta) * evidence
            absolute, relative = sign_stabiliser(x.dtype, self.epsilon)
            radius_part = radius_relevance(terms, radius_evidence, split[:, 1], absolute, relative,
                                           self.radius ** 2 + distance)
            evidence = split[:, :1]
        competitor = softmin_shares(own_margins, self.others[explained], self.beta) * evidence
        if self.output == 'direction':
            # the noise branch's terms eps^2 / D - (x_i - v*_i)^2 have no high or low: only the member pairs count
            return label, logits, self._pair_direction(x, scores, explained, competitor)
        if self.output == 'parts':
            # the rule is linear in the competitors' relevance: one pass per competitor gives its part
            parts = torch.stack([self._pair_relevance(x, scores, explained, competitor * (
                torch.arange(n_clusters, device=x.device) == k).to(x.dtype)) for k in range(n_clusters)], 1)
            return label, logits, parts
        relevance = self._pair_relevance(x, scores, explained, competitor)
        if self.radius is not None:
            relevance = relevance + radius_part
        return label, logits, relevance

    def _contrasts(self, x, scores, explained, own_margins):
        """(N, K, D) relevance of every margin h_ck, in one pass over K copies of each row: copy k has the margin
        against k as its one competitor's relevance (as ``contrast=k``), zero for k = c. One pass keeps an exported
        graph one copy of the rule, whatever K."""
        n_rows, n_features = x.shape
        n_clusters, n_members = own_margins.shape[1], scores.shape[1]
        clusters = torch.arange(n_clusters, device=x.device)
        alone = (clusters.unsqueeze(1) == clusters.unsqueeze(0)).unsqueeze(0) & (
            clusters.reshape(1, n_clusters, 1) != explained.reshape(n_rows, 1, 1))
        competitor = torch.where(alone, own_margins.unsqueeze(1), torch.zeros_like(own_margins).unsqueeze(1))
        relevance = self._pair_relevance(
            x.unsqueeze(1).expand(n_rows, n_clusters, n_features).reshape(-1, n_features),
            scores.unsqueeze(1).expand(n_rows, n_clusters, n_members).reshape(-1, n_members),
            explained.unsqueeze(1).expand(n_rows, n_clusters).reshape(-1), competitor.reshape(-1, n_clusters))
        return relevance.reshape(n_rows, n_clusters, n_features)

    def _pair_factors(self, x, scores, explained, competitor):
        """``(own, own_share, rival_share, h, (absolute, relative, magnitude))`` of the member pairs: the factor of
        pair (i, j) is ``own_share_i rival_share_j / h_ij``, 0 for ties (:func:`.tie_reciprocal` with the threshold
        in the last item)."""
        shares = group_shares(scores, self.groups, self.group_valid, self.member_group, self.relevance_gamma)
        own = self.groups[explained]
        own_share = shares.gather(1, own).masked_fill(~self.group_valid[explained], 0.0)
        rival_share = shares * competitor.index_select(1, self.member_group)
        own_scores = scores.gather(1, own).unsqueeze(2)
        pair_margins = own_scores - scores.unsqueeze(1)
        absolute, relative = tie_stabiliser(x.dtype, self.scale, self.epsilon)
        magnitude = own_scores.abs() + scores.abs().unsqueeze(1) if relative else None
        return own, own_share, rival_share, pair_margins, (absolute, relative, magnitude)

    def _pair_direction(self, x, scores, explained, competitor):
        """Direction codes from the member pairs (docs/method.md, "Direction"): pair (i, j), i in C_c, j in C_k,
        has the part ``F_ij w_ij,d (x_d - m_ij,d)`` with ``w = 2 (u_i - u_j)`` and the midpoint m, so the sum is
        ``sum_ij |F_ij| |u_i - u_j|_d (x_d - m_ij,d)``: per explained cluster, (N_c, A M) x (A M, D) products over
        blocks of its members (|C_c| M D elements per row group; the relevance needs |C_c| M)."""
        own, own_share, rival_share, pair_margins, (absolute, relative, magnitude) = self._pair_factors(
            x, scores, explained, competitor)
        inverse = tie_reciprocal(pair_margins, absolute, relative, magnitude)
        factors = (own_share.unsqueeze(2) * inverse * rival_share.unsqueeze(1)).abs()  # (N, A, M)
        members = self.members
        n_members, n_features = members.shape
        codes = torch.zeros(x.shape, dtype=torch.int8, device=x.device)
        block = max(1, (1 << 22) // max(1, n_members * n_features))
        for c in torch.unique(explained).tolist():
            rows = torch.nonzero(explained == c).squeeze(1)
            f, xc = factors.index_select(0, rows), x.index_select(0, rows)
            own_members = members[self.groups[c]]  # (A, D); padding carries a zero own share
            total = torch.zeros(rows.shape[0], n_features, dtype=x.dtype, device=x.device)
            for start in range(0, own_members.shape[0], block):
                u = own_members[start:start + block].unsqueeze(1)  # (a, 1, D) against every member (M, D)
                weight = (u - members).abs()
                midpoint = 0.5 * (u + members)
                fb = f[:, start:start + block].flatten(1)  # (N_c, a M)
                total += xc * (fb @ weight.flatten(0, 1)) - fb @ (weight * midpoint).flatten(0, 1)
            codes[rows] = torch.sign(total).to(torch.int8)
        return codes

    def _pair_relevance(self, x, scores, explained, competitor):
        """The members' pools and the midpoint rule on every pair, for the (N, K) relevance of the competitors."""
        own, own_share, rival_share, pair_margins, (absolute, relative, magnitude) = self._pair_factors(
            x, scores, explained, competitor)
        return factored_pair_relevance(x, self.members, own, own_share, rival_share, pair_margins, absolute,
                                       relative, magnitude)
